// ebb evaluate end to end: a real process, real files, JSON on stdout, exit 2 on bad input.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, writeFile, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const fixtures = "test/fixtures/retention";
const NOW = "2024-06-01T00:00:00Z";

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", "test/retention/support/evaluate_cli.ts", "evaluate", ...args], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function actions(stdout: string): Record<string, string> {
  const out = JSON.parse(stdout) as { decisions: { digest: string; action: string; reason: string; repository: string; tags: string[] }[] };
  for (const d of out.decisions) {
    assert.equal(typeof d.reason, "string");
    assert.ok(Array.isArray(d.tags));
    assert.equal(typeof d.repository, "string");
  }
  return Object.fromEntries(out.decisions.map((d) => [d.digest, d.action]));
}

const expected = {
  "sha256:a1": "retain", // newest tagged (latestPushedK=1; the untagged a4 is not selected: untagged=false)
  "sha256:a2": "retain", // release tag pulled within 7 days
  "sha256:a3": "delete",
  "sha256:a4": "delete",
  "sha256:b1": "delete", // sandbox/** excluded from the pull rule: repository path without project
  "sha256:b2": "retain",
};

test("Harbor policy JSON and the equivalent ebb policy JSON give the same decisions", async () => {
  const harbor = await run(["--policy", `${fixtures}/harbor_policy.json`, "--candidates", `${fixtures}/candidates.json`, "--now", NOW]);
  assert.equal(harbor.code, 0, harbor.stderr);
  assert.deepEqual(actions(harbor.stdout), expected);
  const ebb = await run(["--policy", `${fixtures}/ebb_policy.json`, "--candidates", `${fixtures}/candidates.json`, "--now", NOW]);
  assert.equal(ebb.code, 0, ebb.stderr);
  assert.deepEqual(actions(ebb.stdout), expected);
});

test("bad input: message naming the problem on stderr, exit code 2, nothing on stdout", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "ebb-evaluate-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const policy = JSON.parse(await readFile(`${fixtures}/ebb_policy.json`, "utf8"));
  policy.rules[0].params.latestPushedK = -1;
  await writeFile(join(dir, "bad_policy.json"), JSON.stringify(policy));
  await writeFile(join(dir, "bad_candidates.json"), JSON.stringify([{ repository: "a/b", digest: "sha256:1", tags: [], pushed_at: "yesterday" }]));
  await writeFile(join(dir, "not_json.json"), "{ nope");
  const cases: [string[], RegExp][] = [
    [["--policy", join(dir, "bad_policy.json"), "--candidates", `${fixtures}/candidates.json`], /rules\[0\]\.params\.latestPushedK: is less than zero/],
    [["--policy", `${fixtures}/ebb_policy.json`, "--candidates", join(dir, "bad_candidates.json")], /\[0\]\.pushed_at: must be an ISO 8601 time/],
    [["--policy", join(dir, "missing.json"), "--candidates", `${fixtures}/candidates.json`], /--policy .*missing\.json: cannot read: ENOENT/],
    [["--policy", join(dir, "not_json.json"), "--candidates", `${fixtures}/candidates.json`], /not valid JSON/],
    [["--policy", `${fixtures}/ebb_policy.json`, "--candidates", `${fixtures}/candidates.json`, "--now", "tomorrow"], /--now tomorrow: not an ISO 8601 time/],
    [["--candidates", `${fixtures}/candidates.json`], /--policy/],
  ];
  for (const [args, message] of cases) {
    const r = await run(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stdout, "");
  }
});
