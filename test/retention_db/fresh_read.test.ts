// Retention decides on what the registry holds NOW: a fresh read of the repository inside the
// task, a tag re-check right before the deletion phase, and a stop heard (LISTEN/NOTIFY) before
// each DELETE. REAL docker-registry (two: one without notifications, one notifying ebb's
// ingest), REAL PostgreSQL, the executions framework with an in-process worker; the registry's
// own API is the judge. Each test works in its own project.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { loadConfig } from "../../src/config/load.js";
import { stopSignalsOf } from "../../src/executions/stop.js";
import { triggerExecution } from "../../src/executions/trigger.js";
import { createLogger } from "../../src/log/logger.js";
import { startService, type RunningService } from "../../src/service/service.js";
import { freshDatabase } from "../support/db.js";
import { pullManifest, pushImage, pushIndex, pushManifest, registryTags, type PushedImage } from "../support/oci_push.js";
import { registrySkipReason, startRegistry, type TestRegistry } from "../support/registry.js";
import { startFaultProxy, type FaultProxy } from "../support/registry_fault_proxy.js";
import { waitFor as waitForEvery } from "../support/wait_for.js";
import { TOKEN, startEventsServer } from "../ingest/support/events_server.js";

const waitFor = <T>(what: string, fn: () => Promise<T | undefined | null | false>) => waitForEvery(what, fn, 60_000, 50);
const skip = registrySkipReason();
const db = skip ? undefined : await freshDatabase();
const q = async <T = any>(sql: string, params: unknown[] = []) => (await db!.pool.query(sql, params)).rows as T[];
let reg: TestRegistry; // no notifications: ebb learns only by reading it
let notified: TestRegistry; // notifies ebb's ingest of every push
let proxy: FaultProxy;
let service: RunningService;
let registryId: number;
let notifiedId: number;
const afterHooks: (() => Promise<void> | void)[] = [];

before(async () => {
  if (skip) return;
  reg = await startRegistry();
  proxy = await startFaultProxy(reg.url);
  registryId = (await q("insert into ebb.registries (name, base_url) values ('local', $1) returning id", [proxy.url]))[0].id;
  const events = await startEventsServer({ after: (fn) => afterHooks.push(fn) }, db!.pool, db!.url, { eventsFlushIntervalMs: 50 });
  notified = await startRegistry(undefined, { notifications: { url: `${events.url}/events?registry=notified`, authorization: `Bearer ${TOKEN}` } });
  notifiedId = (await q("insert into ebb.registries (name, base_url) values ('notified', $1) returning id", [notified.url]))[0].id;
  // a stop check interval of a minute: a stop seen within these tests is seen through LISTEN
  const config = loadConfig({
    DATABASE_URL: db!.url, EBB_ROLES: "worker", EBB_POOL_SIZE: "8", EBB_WORKER_CONCURRENCY: "4",
    EBB_STOP_CHECK_INTERVAL_MS: "60000", EBB_HEARTBEAT_INTERVAL_MS: "500", EBB_DEAD_WORKER_TIMEOUT_MS: "5000",
  });
  service = await startService(config, createLogger("silent"));
});
after(async () => {
  await service?.stop("test done");
  for (const fn of afterHooks) await fn();
  await proxy?.stop();
  await reg?.stop();
  await notified?.stop();
});

async function runExecution(policyId: number, dryRun = false): Promise<any> {
  const id = await triggerExecution(service.ctx, { kind: "retention", targetId: policyId, dryRun });
  return waitFor(`execution ${id}`, async () => (await q("select * from ebb.executions where id = $1 and status not in ('pending', 'running')", [id]))[0]);
}

async function sync(id = registryId): Promise<void> {
  const e = await triggerExecution(service.ctx, { kind: "sync", targetId: id });
  const done = await waitFor(`sync ${e}`, async () => (await q("select * from ebb.executions where id = $1 and status not in ('pending', 'running')", [e]))[0]);
  assert.equal(done.status, "success", JSON.stringify(await q("select error, details from ebb.tasks where execution_id = $1", [e])));
}

async function addPolicy(name: string, project: string, rules: { template: string; params: object; tag_selectors?: object[] }[], onRegistry = registryId): Promise<number> {
  const id = (await q("insert into ebb.policies (name, registry_id, scope) values ($1, $2, $3) returning id",
    [name, onRegistry, JSON.stringify({ projects: [{ kind: "glob", pattern: project }] })]))[0].id;
  for (const r of rules) {
    await q("insert into ebb.policy_rules (policy_id, template, params, tag_selectors) values ($1, $2, $3, $4)",
      [id, r.template, JSON.stringify(r.params), JSON.stringify(r.tag_selectors ?? [{ kind: "glob", decoration: "matches", pattern: "**" }])]);
  }
  return id;
}

/** Push times as push events would have recorded them (days ago). */
async function setPushedDaysAgo(repo: string, days: Record<string, number>): Promise<void> {
  for (const [digest, d] of Object.entries(days)) {
    await q(`update ebb.artifacts a set pushed_at = now() - $3 * interval '1 day', pushed_at_source = 'event'
               from ebb.repositories r where r.id = a.repository_id and r.name = $1 and a.digest = $2`, [repo, digest, d]);
  }
}

async function present(r: TestRegistry, repo: string, digest: string): Promise<boolean> {
  const res = await pullManifest(r, repo, digest);
  if (res.status !== 200 && res.status !== 404) throw new Error(`unexpected ${res.status} for ${repo}@${digest}`);
  return res.status === 200;
}

async function decisions(executionId: number): Promise<Record<string, { action: string; outcome: string; reason: string; tags: string[]; error: string | null }>> {
  const rows = await q("select digest, action, outcome, reason, tags, error from ebb.decisions where execution_id = $1", [executionId]);
  return Object.fromEntries(rows.map((r) => [r.digest, { action: r.action, outcome: r.outcome, reason: r.reason, tags: r.tags, error: r.error }]));
}

async function taskOf(executionId: number): Promise<any> {
  const rows = await q("select * from ebb.tasks where execution_id = $1", [executionId]);
  assert.equal(rows.length, 1, `one task expected, got ${JSON.stringify(rows)}`);
  return rows[0];
}

const keepOnly = (pattern: string) => [{ template: "always", params: {}, tag_selectors: [{ kind: "glob", decoration: "matches", pattern }] }];

test("a tag added in the registry after the last sync (no notifications) keeps its image: the dry run and the real run read it; a dry run on the catalog shows the catalog's age", { skip }, async () => {
  const repo = "f1/app";
  const kept = await pushImage(reg, repo, { tag: "keep-1" });
  const late = await pushImage(reg, repo, { tag: "v2" });
  const old = await pushImage(reg, repo, { tag: "v3" });
  await sync();
  await pushManifest(reg, repo, "keep-late", late.bytes, late.mediaType); // unknown to ebb
  const policyId = await addPolicy("f1", "f1", keepOnly("keep-*"));

  const dry = await runExecution(policyId, true);
  assert.equal(dry.status, "success", JSON.stringify(await taskOf(dry.id)));
  const dryD = await decisions(dry.id);
  assert.equal(dryD[late.digest]!.action, "retain", "the dry run read the late tag");
  assert.deepEqual(dryD[late.digest]!.tags.sort(), ["keep-late", "v2"]);
  assert.equal(dryD[old.digest]!.action, "delete");
  assert.equal((await taskOf(dry.id)).details.read, "registry");

  const real = await runExecution(policyId);
  assert.equal(real.status, "success", JSON.stringify(await taskOf(real.id)));
  assert.ok(await present(reg, repo, late.digest), "the image tagged keep-late after the last sync survives");
  assert.ok(await present(reg, repo, kept.digest));
  assert.equal(await present(reg, repo, old.digest), false, "what no rule keeps is deleted");
  assert.deepEqual(await registryTags(reg, repo), ["keep-1", "keep-late", "v2"]);
  const tags = (await q("select t.name from ebb.tags t join ebb.repositories r on r.id = t.repository_id where r.name = $1 order by 1", [repo])).map((r) => r.name);
  assert.deepEqual(tags, ["keep-1", "keep-late", "v2"], "the catalog was brought up to date by the read");

  // the catalog as it is, for a policy that asks for it: no registry call, its age shown
  await pushManifest(reg, repo, "v9", kept.bytes, kept.mediaType);
  await q("update ebb.policies set dry_run_reads = 'catalog' where id = $1", [policyId]);
  const requestsBefore = proxy.requests.length;
  const onCatalog = await runExecution(policyId, true);
  assert.equal(onCatalog.status, "success");
  const t = await taskOf(onCatalog.id);
  assert.equal(t.details.read, "catalog");
  assert.equal(typeof t.details.catalog_age_seconds, "number");
  assert.equal(proxy.requests.length, requestsBefore, "a dry run on the catalog makes no registry call");
  assert.deepEqual((await decisions(onCatalog.id))[kept.digest]!.tags, ["keep-1"], "it decided on the catalog as it was (v9 unknown)");
  const logs = await q("select message from ebb.task_logs where task_id = $1", [t.id]);
  assert.ok(logs.some((l) => /dry run on the catalog as it is .*last read from the registry \d+ s ago/.test(l.message)), JSON.stringify(logs));
  await assert.rejects(q("update ebb.policies set dry_run_reads = 'sometimes' where id = $1", [policyId]), /policies\.dry_run_reads: must be registry or catalog/);
});

test("a repository pushed to since the last sync (known from push events only) is cleaned, not refused", { skip }, async () => {
  const repo = "f2/app";
  const first = await pushImage(notified, repo, { tag: "v1" });
  await sync(notifiedId);
  const pushed: PushedImage[] = [];
  for (let i = 2; i <= 4; i++) pushed.push(await pushImage(notified, repo, { tag: `v${i}` }));
  const index = await pushIndex(notified, repo, { tag: "multi" });
  await waitFor("push events in the catalog", async () => {
    const [{ n }] = await q(`select count(*)::int as n from ebb.artifacts a join ebb.repositories r on r.id = a.repository_id
                              where r.name = $1 and a.inspected_at is null`, [repo]);
    return n >= 3 + 1 + index.children.length;
  });
  await setPushedDaysAgo(repo, { [first.digest]: 9, [pushed[0]!.digest]: 8, [pushed[1]!.digest]: 7, [pushed[2]!.digest]: 6, [index.digest]: 5 });
  const policyId = await addPolicy("f2", "f2", [{ template: "latestPushedK", params: { latestPushedK: 2 } }], notifiedId);
  const e = await runExecution(policyId);
  const task = await taskOf(e.id);
  assert.equal(e.status, "success", JSON.stringify(task));
  assert.ok(task.details.fresh_read.manifests_read >= 4, JSON.stringify(task.details));
  for (const d of [first.digest, pushed[0]!.digest, pushed[1]!.digest]) assert.equal(await present(notified, repo, d), false, `${d} cleaned`);
  for (const d of [pushed[2]!.digest, index.digest, ...index.children.map((c) => c.digest)]) assert.ok(await present(notified, repo, d), `${d} kept`);
});

test("an incomplete read (a tag-list page or a manifest unreadable) refuses the repository: no decision, nothing deleted", { skip }, async () => {
  const repo = "f3/app";
  const images: PushedImage[] = [];
  for (let i = 1; i <= 3; i++) images.push(await pushImage(reg, repo, { tag: `v${i}` }));
  await sync();
  await setPushedDaysAgo(repo, Object.fromEntries(images.map((img, i) => [img.digest, 10 - i])));
  const policyId = await addPolicy("f3", "f3", [{ template: "latestPushedK", params: { latestPushedK: 1 } }]);

  proxy.inject((m, p) => m === "GET" && p.startsWith(`/v2/${repo}/tags/list`), { kind: "status", status: 500 });
  try {
    const e = await runExecution(policyId);
    assert.equal(e.status, "error");
    assert.match((await taskOf(e.id)).error, /f3\/app could not be read completely from the registry \(.*HTTP 500.*\): nothing decided, nothing deleted/);
    assert.equal(Object.keys(await decisions(e.id)).length, 0);
  } finally {
    proxy.clear();
  }
  // a manifest pushed since the last sync whose GET fails
  const fresh = await pushImage(reg, repo, { tag: "v4" });
  proxy.inject((m, p) => m === "GET" && p === `/v2/${repo}/manifests/${fresh.digest}`, { kind: "status", status: 500 });
  try {
    const e = await runExecution(policyId);
    assert.equal(e.status, "error");
    assert.match((await taskOf(e.id)).error, /could not be read completely from the registry \(get manifest f3\/app@sha256:.*\): nothing decided, nothing deleted/);
    assert.equal(Object.keys(await decisions(e.id)).length, 0);
  } finally {
    proxy.clear();
  }
  for (const img of [...images, fresh]) assert.ok(await present(reg, repo, img.digest), "nothing deleted");
});

test("a digest that gains a tag between the decision and the deletion is not deleted (a new tag, and a tag moved onto it)", { skip }, async () => {
  const repo = "f4/app";
  const a = await pushImage(reg, repo, { tag: "a1" });
  const b = await pushImage(reg, repo, { tag: "b1" });
  const c = await pushImage(reg, repo, { tag: "c1" });
  const prod = await pushImage(reg, repo, { tag: "keep-prod" });
  await pushManifest(reg, repo, "keep-moving", prod.bytes, prod.mediaType);
  await sync();
  const policyId = await addPolicy("f4", "f4", keepOnly("keep-*"));
  // The task reads the tag list twice: for the decision, and right before deleting. The second
  // read is held until the tags have changed in the registry.
  let lists = 0;
  let release!: () => void;
  const changed = new Promise<void>((r) => (release = r));
  proxy.inject((m, p) => m === "GET" && p.startsWith(`/v2/${repo}/tags/list`) && ++lists === 2, { kind: "gate", until: changed }, 1);
  try {
    const id = await triggerExecution(service.ctx, { kind: "retention", targetId: policyId });
    await waitFor("the re-check's tag list", async () => lists >= 2);
    const d = await decisions(id);
    assert.deepEqual([d[a.digest]!.action, d[b.digest]!.action, d[c.digest]!.action, d[prod.digest]!.action], ["delete", "delete", "delete", "retain"], "decided before the change");
    await pushManifest(reg, repo, "keep-new", a.bytes, a.mediaType); // a new tag on a
    await pushManifest(reg, repo, "keep-moving", b.bytes, b.mediaType); // a tag moved onto b
    release();
    const e = await waitFor("the execution", async () => (await q("select * from ebb.executions where id = $1 and status not in ('pending', 'running')", [id]))[0]);
    assert.equal(e.status, "success", JSON.stringify(await taskOf(id)));
    const after = await decisions(id);
    assert.equal(after[a.digest]!.outcome, "skipped");
    assert.match(after[a.digest]!.error!, /gained tag keep-new after the decision: not deleted/);
    assert.equal(after[b.digest]!.outcome, "skipped");
    assert.match(after[b.digest]!.error!, /gained tag keep-moving after the decision/);
    assert.equal(after[c.digest]!.outcome, "deleted");
    assert.ok(await present(reg, repo, a.digest), "a survives with its new tag");
    assert.ok(await present(reg, repo, b.digest), "b survives with the moved tag");
    assert.equal(await present(reg, repo, c.digest), false);
    const task = await taskOf(id);
    assert.deepEqual([task.deleted, task.retained], [1, 3]);
    assert.equal(task.details.skipped_deletions, 2);
  } finally {
    release();
    proxy.clear();
  }
});

test("a stop requested during deletions: no DELETE reaches the registry after the stop commits (heard by LISTEN, not by the minute-long poll)", { skip }, async () => {
  const repo = "f5/app";
  const images: PushedImage[] = [];
  for (let i = 1; i <= 13; i++) images.push(await pushImage(reg, repo, { tag: `v${i}` }));
  await sync();
  await setPushedDaysAgo(repo, Object.fromEntries(images.map((img, i) => [img.digest, 30 - i])));
  const policyId = await addPolicy("f5", "f5", [{ template: "latestPushedK", params: { latestPushedK: 1 } }]);
  const isDelete = (r: { method: string; path: string }) => r.method === "DELETE" && r.path.startsWith(`/v2/${repo}/`);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  // the DELETEs in flight when the stop comes are held at the registry's door until it is heard
  proxy.inject((m, p) => isDelete({ method: m, path: p }), { kind: "gate", until: gate });
  try {
    const id = await triggerExecution(service.ctx, { kind: "retention", targetId: policyId });
    await waitFor("4 DELETEs in flight", async () => proxy.requests.filter(isDelete).length >= 4);
    const stopSentAt = Date.now();
    await q("update ebb.executions set stop_requested = true where id = $1", [id]);
    await waitFor("the stop heard by the worker", async () => stopSignalsOf(service.ctx.pool).heardAt(id) !== undefined);
    release();
    const e = await waitFor("stopped", async () => (await q("select * from ebb.executions where id = $1 and status not in ('pending', 'running')", [id]))[0]);
    assert.equal(e.status, "stopped");
    const deletes = proxy.requests.filter(isDelete);
    assert.deepEqual(deletes.filter((r) => r.at >= stopSentAt).map((r) => r.path), [], "no DELETE arrived after the stop");
    assert.equal(deletes.length, 4, "only the 4 in flight before the stop");
    const d = await decisions(id);
    const deleted = Object.entries(d).filter(([, x]) => x.outcome === "deleted").map(([k]) => k);
    const pending = Object.entries(d).filter(([, x]) => x.outcome === "pending").map(([k]) => k);
    assert.deepEqual([deleted.length, pending.length], [4, 8]);
    for (const k of pending) assert.ok(await present(reg, repo, k), "not deleted after the stop");
    assert.equal((await taskOf(id)).status, "stopped");
  } finally {
    release();
    proxy.clear();
  }
});
