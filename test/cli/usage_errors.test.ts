// Usage errors of the operator commands end to end: exit 2 and a message naming the problem
// (flags, arguments, unknown policies/executions/registries, bad configuration).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runEbb } from "../support/ebb_process.js";
import { freshDatabase } from "../support/db.js";
import { seedHistory } from "./support/history_seed.js";
import { runCli } from "./support/run_cli.js";

test("wrong flags, arguments and names: exit 2 and a message naming the problem", async (t) => {
  const db = await freshDatabase(t);
  await seedHistory(db.pool);
  const env = { DATABASE_URL: db.url };
  const dir = await mkdtemp(join(tmpdir(), "ebb-usage-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, "not_json.json"), "{ nope");
  await writeFile(join(dir, "negative.json"), JSON.stringify({ name: "neg", rules: [{ template: "latestPushedK", params: { latestPushedK: -1 } }] }));
  await writeFile(join(dir, "unknown_template.json"), JSON.stringify({ name: "t", rules: [{ template: "latestPushed", params: {} }] }));
  const cases: [string[], RegExp][] = [
    [["run", "no-such-policy"], /policy no-such-policy: no such policy/],
    [["run"], /missing required argument 'policy'/],
    [["run", "keep-recent", "--worker-timeout", "soon"], /--worker-timeout.*must be a whole number/],
    [["executions", "list", "--limit", "abc"], /--limit.*must be a whole number/],
    [["executions", "list", "--status", "done"], /--status.*must be one of pending, running, success, error, stopped/],
    [["executions", "list", "--policy", "nope"], /--policy nope: no such policy/],
    [["executions", "list", "--bogus"], /unknown option '--bogus'/],
    [["executions", "show", "abc"], /must be an execution id/],
    [["executions", "show", "424242"], /execution 424242: no such execution/],
    [["sync", "nowhere"], /registry nowhere: no such registry/],
    [["policy", "create", "--file", join(dir, "missing.json"), "--registry", "local"], /--file .*missing\.json: cannot read: ENOENT/],
    [["policy", "create", "--file", join(dir, "not_json.json"), "--registry", "local"], /--file .*not_json\.json: not valid JSON/],
    [["policy", "create", "--file", join(dir, "negative.json"), "--registry", "local"], /rules\[0\]\.params\.latestPushedK: is less than zero/],
    [["policy", "create", "--file", join(dir, "unknown_template.json"), "--registry", "local"], /rules\[0\]\.template/],
    [["policy", "create", "--file", join(dir, "negative.json")], /required option '--registry <name>' not specified/],
    [["status", "--database-url", "mysql://x"], /DATABASE_URL \(--database-url\): must be a postgres:\/\/ URL/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(args, env);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
    assert.equal(r.stdout, "", `${args.join(" ")}: nothing on stdout`);
  }
  // and through the real binary: the exit code reaches the shell
  const real = await runEbb(["executions", "list", "--limit", "0"], env);
  assert.equal(real.code, 2, real.stderr);
  assert.match(real.stderr, /--limit.*must be between 1 and 10000/);
});

test("a database that is not migrated: exit 1 and the advice to run ebb migrate", async (t) => {
  const db = await freshDatabase(t, { migrate: false });
  const r = await runCli(["executions", "list"], { DATABASE_URL: db.url });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /the database is not migrated \(pending: 0001_schema\.sql.*\): run ebb migrate first/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "a message, not a stack trace");
});
