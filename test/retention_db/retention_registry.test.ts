// Retention against a REAL docker-registry and a REAL PostgreSQL, through the executions
// framework (triggerExecution + an in-process worker), checked with the registry's own API.
// Every test works in its own project (namespace) and its policy's scope is that project.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { loadConfig } from "../../src/config/load.js";
import { StopRequested, type Execution, type TaskControl } from "../../src/executions/kind.js";
import { requestStop } from "../../src/executions/stop.js";
import { triggerExecution } from "../../src/executions/trigger.js";
import { createLogger } from "../../src/log/logger.js";
import { retentionKind } from "../../src/retention/retention_kind.js";
import { startService, type RunningService } from "../../src/service/service.js";
import { freshDatabase, type Query } from "../support/db.js";
import { waitFor as waitForEvery } from "../support/wait_for.js";
import { pullManifest, pushImage, pushIndex, pushManifest, pushReferrer, registryTags, type PushedImage } from "../support/oci_push.js";
import { registrySkipReason, startRegistry, type TestRegistry } from "../support/registry.js";
import { startFaultProxy, type FaultProxy } from "../support/registry_fault_proxy.js";

const waitFor = <T>(what: string, fn: () => Promise<T | undefined | null | false>) => waitForEvery(what, fn, 30_000, 50);
const skip = registrySkipReason();
const db = skip ? undefined : await freshDatabase();
const q: Query = (sql, params) => db!.q(sql, params);
let reg: TestRegistry;
let proxy: FaultProxy;
let service: RunningService;
let registryId: number;

before(async () => {
  if (skip) return;
  reg = await startRegistry();
  proxy = await startFaultProxy(reg.url);
  // every ebb call to the registry goes through the fault proxy (faults only when injected)
  registryId = (await q("insert into ebb.registries (name, base_url) values ('local', $1) returning id", [proxy.url]))[0].id;
  const config = loadConfig({
    DATABASE_URL: db!.url, EBB_ROLES: "worker", EBB_POOL_SIZE: "8", EBB_WORKER_CONCURRENCY: "4",
    EBB_STOP_CHECK_INTERVAL_MS: "50", EBB_HEARTBEAT_INTERVAL_MS: "500", EBB_DEAD_WORKER_TIMEOUT_MS: "5000",
  });
  service = await startService(config, createLogger("silent"));
});
after(async () => {
  await service?.stop("test done");
  await proxy?.stop();
  await reg?.stop();
});


async function runExecution(kind: string, targetId: number, dryRun = false): Promise<any> {
  const id = await triggerExecution(service.ctx, { kind, targetId, dryRun });
  return waitFor(`execution ${id}`, async () => (await q("select * from ebb.executions where id = $1 and status not in ('pending', 'running')", [id]))[0]);
}

async function sync(): Promise<void> {
  const e = await runExecution("sync", registryId);
  const tasks = await q("select status, error, details from ebb.tasks where execution_id = $1", [e.id]);
  assert.equal(e.status, "success", JSON.stringify(tasks));
}

/** Push times as push events would have recorded them (days ago). */
async function setPushedDaysAgo(repo: string, days: Record<string, number>): Promise<void> {
  for (const [digest, d] of Object.entries(days)) {
    await q(`update ebb.artifacts a set pushed_at = now() - $3 * interval '1 day', pushed_at_source = 'event'
               from ebb.repositories r where r.id = a.repository_id and r.name = $1 and a.digest = $2`, [repo, digest, d]);
  }
}

async function addPolicy(name: string, project: string, rules: { template: string; params: object; tag_selectors?: object[] }[], extra: Record<string, unknown> = {}): Promise<number> {
  const cols = ["name", "registry_id", "scope", ...Object.keys(extra)];
  const values = [name, registryId, JSON.stringify({ projects: [{ kind: "glob", pattern: project }] }), ...Object.values(extra)];
  const id = (await q(`insert into ebb.policies (${cols.join(", ")}) values (${cols.map((_, i) => `$${i + 1}`).join(", ")}) returning id`, values))[0].id;
  for (const r of rules) {
    await q("insert into ebb.policy_rules (policy_id, template, params, tag_selectors) values ($1, $2, $3, $4)",
      [id, r.template, JSON.stringify(r.params), JSON.stringify(r.tag_selectors ?? [{ kind: "glob", decoration: "matches", pattern: "**" }])]);
  }
  return id;
}

async function present(repo: string, digest: string): Promise<boolean> {
  const r = await pullManifest(reg, repo, digest);
  if (r.status !== 200 && r.status !== 404) throw new Error(`unexpected ${r.status} for ${repo}@${digest}`);
  return r.status === 200;
}

async function decisions(executionId: number): Promise<Record<string, { action: string; outcome: string; reason: string; tags: string[]; role: string; planned_action: string | null; error: string | null }>> {
  const rows = await q("select digest, action, outcome, reason, tags, role, planned_action, error from ebb.decisions where execution_id = $1", [executionId]);
  return Object.fromEntries(rows.map((r) => [r.digest, { action: r.action, outcome: r.outcome, reason: r.reason, tags: r.tags, role: r.role, planned_action: r.planned_action, error: r.error }]));
}

async function taskOf(executionId: number): Promise<any> {
  const rows = await q("select * from ebb.tasks where execution_id = $1", [executionId]);
  assert.equal(rows.length, 1, `one task expected, got ${JSON.stringify(rows)}`);
  return rows[0];
}

function cosignTag(digest: string): string {
  return `${digest.replace(":", "-")}.sig`;
}

async function pushImages(repo: string, n: number, prefix = "v"): Promise<PushedImage[]> {
  const out: PushedImage[] = [];
  for (let i = 1; i <= n; i++) out.push(await pushImage(reg, repo, { tag: `${prefix}${i}` }));
  return out;
}

test("latestPushedK: dry run decides and deletes nothing; the real run deletes exactly the same, keeping index children and referrers of kept artifacts", { skip }, async () => {
  const repo = "t1/app";
  const [v1, v2, v3] = await pushImages(repo, 3);
  const multi = await pushIndex(reg, repo, { tag: "multi" });
  const v4 = await pushImage(reg, repo, { tag: "v4" });
  await pushManifest(reg, repo, "latest", v4.bytes, v4.mediaType);
  // sync finds referrers by their cosign-style tag (docker-registry 2.8 has no referrers API)
  const sig4 = await pushReferrer(reg, repo, v4, { tag: cosignTag(v4.digest) });
  const sig1 = await pushReferrer(reg, repo, v1!, { tag: cosignTag(v1!.digest) });
  const other = await pushImage(reg, "t1other/app", { tag: "v1" }); // out of scope (project t1other)
  await sync();
  await setPushedDaysAgo(repo, { [v1!.digest]: 5, [v2!.digest]: 4, [v3!.digest]: 3, [multi.digest]: 2, [v4.digest]: 1 });
  const policyId = await addPolicy("t1", "t1", [{ template: "latestPushedK", params: { latestPushedK: 2 } }]);

  const goes = [v1!.digest, v2!.digest, v3!.digest, sig1.digest].sort();
  const stays = [v4.digest, multi.digest, ...multi.children.map((c) => c.digest), sig4.digest].sort();

  const dry = await runExecution("retention", policyId, true);
  assert.equal(dry.status, "success");
  assert.equal(dry.dry_run, true);
  const dryDecisions = await decisions(dry.id);
  assert.deepEqual(Object.keys(dryDecisions).sort(), [...goes, ...stays].sort(), "one decision per artifact of the repository");
  assert.deepEqual(Object.entries(dryDecisions).filter(([, d]) => d.action === "delete").map(([k]) => k).sort(), goes);
  assert.ok(Object.values(dryDecisions).every((d) => d.outcome === (d.action === "delete" ? "dry_run" : "none")));
  for (const d of [...goes, ...stays]) assert.ok(await present(repo, d), `dry run deleted nothing (${d})`);
  const dryTask = await taskOf(dry.id);
  assert.deepEqual([dryTask.total, dryTask.retained, dryTask.deleted, dryTask.errors], [9, 5, 4, 0]);
  assert.equal(dryDecisions[v4.digest]!.reason, "retained by rules[0] latestPushedK=2");
  assert.deepEqual(dryDecisions[v4.digest]!.tags.sort(), ["latest", "v4"]);
  assert.equal(dryDecisions[multi.children[0]!.digest]!.role, "index_child");
  assert.equal(dryDecisions[sig4.digest]!.role, "referrer");

  const real = await runExecution("retention", policyId);
  assert.equal(real.status, "success", JSON.stringify(await taskOf(real.id)));
  const realDecisions = await decisions(real.id);
  assert.deepEqual(
    Object.fromEntries(Object.entries(realDecisions).map(([k, d]) => [k, [d.action, d.reason, d.role]])),
    Object.fromEntries(Object.entries(dryDecisions).map(([k, d]) => [k, [d.action, d.reason, d.role]])),
    "the dry run wrote the same decisions as the real run",
  );
  for (const d of goes) {
    assert.equal(await present(repo, d), false, `${d} must be gone from the registry`);
    assert.equal(realDecisions[d]!.outcome, "deleted");
  }
  for (const d of stays) assert.ok(await present(repo, d), `${d} must survive`);
  assert.ok(await present("t1other/app", other.digest), "out-of-scope repository untouched");
  assert.deepEqual(await registryTags(reg, repo), ["latest", "multi", cosignTag(v4.digest), "v4"].sort());
  const catalog = (await q("select a.digest from ebb.artifacts a join ebb.repositories r on r.id = a.repository_id where r.name = $1 order by 1", [repo])).map((r) => r.digest);
  assert.deepEqual(catalog, stays, "catalog rows of deleted artifacts are removed");
  const task = await taskOf(real.id);
  assert.deepEqual([task.status, task.total, task.retained, task.deleted, task.errors], ["success", 9, 5, 4, 0]);
  const summary = (await q("select deleted, retained from ebb.execution_summary where id = $1", [real.id]))[0];
  assert.deepEqual([Number(summary.deleted), Number(summary.retained)], [4, 5]);
  assert.equal((await q("select count(*)::int as n from ebb.tasks t join ebb.executions e on e.id = t.execution_id where e.id = $1 and t.key = 't1other/app'", [real.id]))[0].n, 0, "no task for a repository out of scope");
});

test("a STALE repository is refused by a dry run on the catalog; a run that reads the registry decides on that read and clears STALE", { skip }, async () => {
  const repo = "t2/app";
  const images = await pushImages(repo, 3);
  await sync();
  await setPushedDaysAgo(repo, Object.fromEntries(images.map((img, i) => [img.digest, 10 - i])));
  await q("update ebb.repositories set stale = true, stale_reason = 'sync could not read the repository: test', stale_since = now() where name = $1", [repo]);
  const policyId = await addPolicy("t2", "t2", [{ template: "latestPushedK", params: { latestPushedK: 1 } }], { dry_run_reads: "catalog" });
  const e = await runExecution("retention", policyId, true);
  assert.equal(e.status, "error");
  const task = await taskOf(e.id);
  assert.match(task.error, /t2\/app is STALE \(sync could not read the repository: test\): nothing decided, nothing deleted/);
  assert.equal(Object.keys(await decisions(e.id)).length, 0);
  for (const img of images) assert.ok(await present(repo, img.digest));

  const real = await runExecution("retention", policyId);
  assert.equal(real.status, "success", JSON.stringify(await taskOf(real.id)));
  assert.equal((await q("select stale from ebb.repositories where name = $1", [repo]))[0].stale, false, "a complete read clears STALE");
  for (const img of images.slice(0, 2)) assert.equal(await present(repo, img.digest), false);
  assert.ok(await present(repo, images[2]!.digest));
});

test("artifacts known only from push events (manifest never read): a dry run on the catalog refuses; a run that reads the registry reads them, referrers stay with their subject", { skip }, async () => {
  const repo = "t9/app";
  const [v1, v2] = await pushImages(repo, 2);
  const sig2 = await pushReferrer(reg, repo, v2!, { tag: cosignTag(v2!.digest) });
  await sync();
  await setPushedDaysAgo(repo, { [v1!.digest]: 3, [v2!.digest]: 2, [sig2.digest]: 1 });
  // as the notifications ingest leaves a pushed signature: its subject is not known yet
  await q(`update ebb.artifacts a set inspected_at = null from ebb.repositories r
            where r.id = a.repository_id and r.name = $1 and a.digest = $2`, [repo, sig2.digest]);
  await q(`delete from ebb.artifact_references ar using ebb.repositories r
            where r.id = ar.repository_id and r.name = $1 and ar.digest = $2`, [repo, sig2.digest]);
  const policyId = await addPolicy("t9", "t9", [{ template: "latestPushedK", params: { latestPushedK: 1 } }], { dry_run_reads: "catalog" });

  const refused = await runExecution("retention", policyId, true);
  assert.equal(refused.status, "error");
  assert.match((await taskOf(refused.id)).error, /t9\/app holds 1 artifact\(s\) whose manifests ebb has not read yet .*nothing decided, nothing deleted/);
  assert.equal(Object.keys(await decisions(refused.id)).length, 0);
  for (const d of [v1!.digest, v2!.digest, sig2.digest]) assert.ok(await present(repo, d), `nothing deleted (${d})`);

  const real = await runExecution("retention", policyId); // reads the signature's manifest: its subject is v2
  assert.equal(real.status, "success", JSON.stringify(await taskOf(real.id)));
  const d = await decisions(real.id);
  assert.equal(d[sig2.digest]!.role, "referrer");
  assert.equal(d[sig2.digest]!.action, "retain");
  assert.ok(await present(repo, v2!.digest), "the newest image stays");
  assert.ok(await present(repo, sig2.digest), "its signature stays with it");
  assert.equal(await present(repo, v1!.digest), false, "the older image goes");
});

test("a cap exceeded aborts the repository: reason on the task, planned deletes recorded, nothing deleted", { skip }, async () => {
  const repo = "t3/app";
  const images = await pushImages(repo, 4);
  await sync();
  await setPushedDaysAgo(repo, Object.fromEntries(images.map((img, i) => [img.digest, 10 - i])));
  const policyId = await addPolicy("t3", "t3", [{ template: "latestPushedK", params: { latestPushedK: 1 } }], { max_deletions: 2 });
  const e = await runExecution("retention", policyId);
  assert.equal(e.status, "error");
  const task = await taskOf(e.id);
  assert.match(task.error, /aborted: plan deletes or untags 3 of 4 artifacts, more than caps.max_deletions=2; nothing deleted/);
  const d = await decisions(e.id);
  assert.equal(Object.values(d).filter((x) => x.planned_action === "delete" && x.action === "retain").length, 3);
  for (const img of images) assert.ok(await present(repo, img.digest), "nothing deleted");
});

test("the registry failing a delete: error recorded on its decision, the others go on, a re-run converges", { skip }, async () => {
  const repo = "t4/app";
  const images = await pushImages(repo, 4);
  await sync();
  await setPushedDaysAgo(repo, Object.fromEntries(images.map((img, i) => [img.digest, 10 - i])));
  const policyId = await addPolicy("t4", "t4", [{ template: "latestPushedK", params: { latestPushedK: 1 } }]);
  const failing = images[1]!.digest;
  proxy.inject((m, p) => m === "DELETE" && p.endsWith(`/v2/${repo}/manifests/${failing}`), { kind: "status", status: 500 });
  try {
    const e = await runExecution("retention", policyId);
    assert.equal(e.status, "error");
    const task = await taskOf(e.id);
    assert.match(task.error, /1 deletion\(s\) failed/);
    assert.deepEqual([task.deleted, task.errors, task.retained], [2, 1, 1]);
    const d = await decisions(e.id);
    assert.equal(d[failing]!.outcome, "failed");
    assert.match(d[failing]!.error!, /HTTP 500/);
    assert.ok(await present(repo, failing), "the failed one is still there");
    assert.equal(await present(repo, images[0]!.digest), false, "the others were deleted");
    assert.equal(await present(repo, images[2]!.digest), false);
    assert.ok(await present(repo, images[3]!.digest), "the newest survives");
  } finally {
    proxy.clear();
  }
  const again = await runExecution("retention", policyId);
  assert.equal(again.status, "success");
  assert.equal(await present(repo, failing), false, "the re-run deleted what failed before");
  assert.ok(await present(repo, images[3]!.digest));
  const task = await taskOf(again.id);
  assert.deepEqual([task.total, task.deleted, task.errors], [2, 1, 0]);
});

test("a stop requested during deletion stops between deletions: what was not deleted yet survives", { skip }, async () => {
  const repo = "t5/app";
  const images = await pushImages(repo, 17);
  await sync();
  await setPushedDaysAgo(repo, Object.fromEntries(images.map((img, i) => [img.digest, 30 - i])));
  const newest = images[16]!.digest;
  const policyId = await addPolicy("t5", "t5", [{ template: "latestPushedK", params: { latestPushedK: 1 } }]);
  proxy.inject((m, p) => m === "DELETE" && p.startsWith(`/v2/${repo}/`), { kind: "delay", ms: 300 });
  try {
    const id = await triggerExecution(service.ctx, { kind: "retention", targetId: policyId });
    await waitFor("a first DELETE", async () => proxy.requests.some((r) => r.method === "DELETE" && r.path.startsWith(`/v2/${repo}/`)));
    assert.equal(await requestStop(service.ctx, id), "requested");
    const e = await waitFor("stopped", async () => (await q("select * from ebb.executions where id = $1 and status not in ('pending', 'running')", [id]))[0]);
    assert.equal(e.status, "stopped");
    const d = await decisions(id);
    const deleted = Object.entries(d).filter(([, x]) => x.outcome === "deleted").map(([k]) => k);
    const pending = Object.entries(d).filter(([, x]) => x.outcome === "pending").map(([k]) => k);
    assert.ok(deleted.length >= 1, "some deletions happened before the stop");
    assert.ok(pending.length >= 4, `the stop was honoured mid-deletion (deleted ${deleted.length}, pending ${pending.length})`);
    assert.equal(deleted.length + pending.length, 16);
    for (const k of pending) assert.ok(await present(repo, k), "not deleted after the stop");
    for (const k of deleted) assert.equal(await present(repo, k), false);
    assert.ok(await present(repo, newest));
    const task = await taskOf(id);
    assert.equal(task.status, "stopped");
    assert.equal(task.deleted, deleted.length, "counts say what was done before the stop");
    const deletesSeen = proxy.requests.filter((r) => r.method === "DELETE" && r.path.startsWith(`/v2/${repo}/`)).length;
    await sleep(500);
    assert.equal(proxy.requests.filter((r) => r.method === "DELETE" && r.path.startsWith(`/v2/${repo}/`)).length, deletesSeen, "no DELETE after the stop");
  } finally {
    proxy.clear();
  }
});

test("a task re-run after a crash mid-deletion is idempotent: no decision twice, no manifest deleted twice", { skip }, async () => {
  const repo = "t6/app";
  const images = await pushImages(repo, 9);
  await sync();
  await setPushedDaysAgo(repo, Object.fromEntries(images.map((img, i) => [img.digest, 20 - i])));
  const policyId = await addPolicy("t6", "t6", [{ template: "latestPushedK", params: { latestPushedK: 1 } }]);
  const kind = retentionKind({ deleteConcurrency: 1 });
  const [row] = await q("insert into ebb.executions (kind, target_id, trigger, status, started_at) values ('retention', $1, 'manual', 'running', now()) returning *", [policyId]);
  const execution: Execution = { id: row.id, kind: "retention", targetId: policyId, scheduleId: null, fireTime: row.fire_time, trigger: "manual", dryRun: false };
  const specs = [];
  for await (const batch of kind.planTasks(service.ctx, execution)) specs.push(...batch);
  const spec = specs.find((s) => s.key === repo)!;
  const [taskRow] = await q("insert into ebb.tasks (execution_id, key, payload, status) values ($1, $2, $3, 'running') returning id", [row.id, repo, JSON.stringify(spec.payload)]);
  const task = { id: taskRow.id, executionId: row.id, key: repo, group: null, payload: spec.payload!, attempt: 1 };
  const control = (crashAfter: number): TaskControl => {
    let checks = 0;
    return {
      execution, signal: new AbortController().signal, log() {}, counts: { total: 0, retained: 0, deleted: 0, errors: 0 }, details: {},
      async checkpoint() {
        if (++checks > crashAfter) throw new Error("simulated crash");
      },
    };
  };
  await assert.rejects(kind.runTask(service.ctx, task, control(3)), /simulated crash/);
  const firstDeletes = proxy.requests.filter((r) => r.method === "DELETE" && r.path.startsWith(`/v2/${repo}/`)).length;
  assert.equal(firstDeletes, 3);
  const c = control(Number.POSITIVE_INFINITY);
  await kind.runTask(service.ctx, { ...task, attempt: 2 }, c);
  const deletes = proxy.requests.filter((r) => r.method === "DELETE" && r.path.startsWith(`/v2/${repo}/`)).map((r) => r.path);
  assert.equal(deletes.length, 8, "each of the 8 deletions was made once");
  assert.equal(new Set(deletes).size, 8);
  const rows = await q("select digest, outcome from ebb.decisions where execution_id = $1", [row.id]);
  assert.equal(rows.length, 9, "no decision written twice");
  assert.equal(rows.filter((r) => r.outcome === "deleted").length, 8);
  assert.deepEqual(c.counts, { total: 9, retained: 1, deleted: 8, errors: 0 });
  assert.ok(await present(repo, images[8]!.digest));
  for (const img of images.slice(0, 8)) assert.equal(await present(repo, img.digest), false);
  // a third run (e.g. a late duplicate job) changes nothing
  await kind.runTask(service.ctx, { ...task, attempt: 3 }, control(Number.POSITIVE_INFINITY));
  assert.equal(proxy.requests.filter((r) => r.method === "DELETE" && r.path.startsWith(`/v2/${repo}/`)).length, 8);
  void StopRequested;
});

test("deletion unit untag: a manifest whose last tag goes is deleted; removing some tags only is recorded as unsupported and changes nothing", { skip }, async () => {
  const repo = "t7/app";
  const a = await pushImage(reg, repo, { tag: "keep-1" });
  await pushManifest(reg, repo, "old-1", a.bytes, a.mediaType);
  const b = await pushImage(reg, repo, { tag: "old-2" });
  const c = await pushImage(reg, repo, { tag: "keep-2" });
  await sync();
  const policyId = await addPolicy("t7", "t7", [{ template: "always", params: {}, tag_selectors: [{ decoration: "matches", pattern: "keep-*" }] }], { deletion_unit: "untag" });
  const e = await runExecution("retention", policyId);
  assert.equal(e.status, "success", JSON.stringify(await taskOf(e.id)));
  const d = await decisions(e.id);
  assert.equal(d[a.digest]!.action, "untag");
  assert.equal(d[a.digest]!.outcome, "unsupported");
  assert.match(d[a.digest]!.error!, /untag unsupported by the registry/);
  assert.equal(d[b.digest]!.outcome, "deleted");
  assert.equal(d[c.digest]!.action, "retain");
  assert.deepEqual(await registryTags(reg, repo), ["keep-1", "keep-2", "old-1"]);
  assert.equal(await present(repo, b.digest), false);
  const task = await taskOf(e.id);
  assert.deepEqual(task.details.untag_unsupported, 1);
});
