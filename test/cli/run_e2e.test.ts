// The operator's path end to end, every step a real `ebb` process, against a real PostgreSQL
// and a real docker-registry: sync the registry, create a policy from a file with
// `ebb policy create`, dry run, real run with --wait (what must survive survives in the
// registry), list executions, JSON outputs that parse; a run that ends in error exits 1.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildProgram } from "../../src/cli/main.js";
import { freshDatabase } from "../support/db.js";
import { runEbb, spawnEbb } from "../support/ebb_process.js";
import { pullManifest, pushImage, registryTags } from "../support/oci_push.js";
import { registrySkipReason, startRegistry } from "../support/registry.js";

const policyCommand = buildProgram().commands.some((c) => c.name() === "policy");
const skip = registrySkipReason() ?? (policyCommand ? undefined : "ebb policy is not registered in src/cli/main.ts yet");

test("sync, policy create, dry run, run --wait, executions list: real processes, real registry", { skip, timeout: 120_000 }, async (t) => {
  const db = await freshDatabase(t);
  const reg = await startRegistry(t);
  const dir = await mkdtemp(join(tmpdir(), "ebb-run-e2e-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const env = { DATABASE_URL: db.url };
  const ebb = async (...args: string[]) => runEbb(args, env);

  // the registry: team/app with 4 tagged images (v1 oldest ... v4 newest), other/keep untouched
  const images = [];
  for (const tag of ["v1", "v2", "v3", "v4"]) images.push(await pushImage(reg, "team/app", { tag, seed: tag }));
  await pushImage(reg, "other/keep", { tag: "only", seed: "other" });
  await db.pool.query("insert into ebb.registries (name, base_url) values ('local', $1)", [reg.url]);

  // a worker: `ebb start --roles worker`, a real process
  const worker = spawnEbb(["start", "--roles", "worker"], {
    ...env, EBB_HEARTBEAT_INTERVAL_MS: "500", EBB_DEAD_WORKER_TIMEOUT_MS: "5000", EBB_STOP_CHECK_INTERVAL_MS: "100",
  });
  t.after(() => worker.child.kill("SIGTERM"));
  await worker.waitForReady();

  // sync the registry and wait: the catalog now holds what the registry holds
  const sync = await ebb("sync", "local", "--wait", "--json");
  assert.equal(sync.code, 0, sync.stderr);
  const synced = JSON.parse(sync.stdout);
  assert.equal(synced.execution.status, "success");
  assert.equal(synced.execution.kind, "sync");
  const { rows: arts } = await db.pool.query(
    "select r.name, count(*)::int as n from ebb.artifacts a join ebb.repositories r on r.id = a.repository_id group by 1 order by 1");
  assert.deepEqual(arts, [{ name: "other/keep", n: 1 }, { name: "team/app", n: 4 }]);
  // push order as the registry's push events would have recorded it (v4 newest)
  for (const [i, img] of images.entries()) {
    await db.pool.query("update ebb.artifacts set pushed_at = now() - $2 * interval '1 day' where digest = $1", [img.digest, 4 - i]);
  }

  // a policy from a file: keep the 2 most recently pushed in project team
  const file = join(dir, "keep-two.json");
  await writeFile(file, JSON.stringify({
    name: "keep-two",
    scope: { projects: [{ kind: "glob", pattern: "team" }] },
    rules: [{ template: "latestPushedK", params: { latestPushedK: 2 }, tag_selectors: [{ kind: "glob", decoration: "matches", pattern: "**" }] }],
  }));
  const created = await ebb("policy", "create", "--file", file, "--registry", "local");
  assert.equal(created.code, 0, created.stderr);

  // dry run: decisions recorded, nothing deleted
  const dry = await ebb("run", "keep-two", "--dry-run", "--wait", "--json");
  assert.equal(dry.code, 0, dry.stderr);
  const dryDetail = JSON.parse(dry.stdout);
  assert.equal(dryDetail.execution.status, "success");
  assert.equal(dryDetail.execution.dry_run, true);
  const count = (d: any, action: string, outcome: string) => d.decisions.find((c: any) => c.action === action && c.outcome === outcome)?.count ?? 0;
  assert.equal(count(dryDetail, "delete", "dry_run"), 2);
  assert.equal(count(dryDetail, "retain", "none"), 2);
  assert.deepEqual((await registryTags(reg, "team/app")).sort(), ["v1", "v2", "v3", "v4"], "a dry run deletes nothing");

  // the real run, followed to its end: id first, then the summary table
  const real = await ebb("run", "keep-two", "--wait");
  assert.equal(real.code, 0, real.stderr);
  const [idLine, ...summary] = real.stdout.split("\n");
  const realId = Number(idLine);
  assert.ok(Number.isSafeInteger(realId) && realId > 0, `first line is the execution id: ${idLine}`);
  assert.match(summary.join("\n"), /status\s*│\s*success/);
  assert.match(summary.join("\n"), /delete\s*│\s*deleted\s*│\s*2/);
  assert.match(real.stderr, new RegExp(`execution ${realId}: success, 1/1 repositories, 2 deleted`), "progress lines when stderr is not a TTY");
  // what must survive survives: the two newest in team/app, and the repository out of scope
  assert.deepEqual((await registryTags(reg, "team/app")).sort(), ["v3", "v4"]);
  for (const img of images.slice(2)) assert.equal((await pullManifest(reg, "team/app", img.digest)).digest, img.digest);
  assert.deepEqual(await registryTags(reg, "other/keep"), ["only"]);

  // history: both runs of the policy, newest first, counts as SQL has them
  const list = await ebb("executions", "list", "--policy", "keep-two", "--json");
  assert.equal(list.code, 0, list.stderr);
  const items = JSON.parse(list.stdout);
  assert.deepEqual(items.map((e: any) => [e.id, e.status, e.dry_run, e.deleted]), [[realId, "success", false, 2], [dryDetail.execution.id, "success", true, 2]],
    "a dry run counts what it would delete (Harbor's dry run does the same)");
  const table = await ebb("executions", "list");
  assert.match(table.stdout, /keep-two/);
  assert.match(table.stdout, /sync\s*│\s*local/);
  assert.match(table.stdout, /2 \(dry run\)/);

  // one repository synced now by the CLI itself: the catalog follows the deletions and a push
  await pushImage(reg, "team/app", { tag: "v5", seed: "v5" });
  const one = await ebb("sync", "local", "team/app", "--json");
  assert.equal(one.code, 0, one.stderr);
  assert.equal(JSON.parse(one.stdout).status, "synced");
  const { rows: left } = await db.pool.query(
    "select count(*)::int as n from ebb.artifacts a join ebb.repositories r on r.id = a.repository_id where r.name = 'team/app'");
  assert.equal(left[0].n, 3);

  // a run that ends in error exits 1 with the reason: v3 is to go, but the registry's
  // credentials are not there; nothing is deleted
  await db.pool.query("update ebb.registries set auth_kind = 'basic', credentials_ref = 'env:EBB_E2E_MISSING_CREDENTIALS'");
  const failed = await ebb("run", "keep-two", "--wait");
  assert.equal(failed.code, 1, failed.stderr);
  assert.match(failed.stderr, /ended in error: .*EBB_E2E_MISSING_CREDENTIALS/);
  assert.deepEqual((await registryTags(reg, "team/app")).sort(), ["v3", "v4", "v5"]);
});
