// Catalog writers that meet converge: a manifest deleted while a sync reads its repository
// is simply absent afterwards, and a sync that loses a lock conflict (deadlock) retries
// instead of leaving the repository STALE. Real PostgreSQL, real docker-registry.
import assert from "node:assert/strict";
import test from "node:test";
import pg from "pg";
import { RegistryClient } from "../../src/registry/client.js";
import { syncRegistry, syncRepository, type SyncDeps } from "../../src/registry/sync.js";
import { freshDatabase } from "../support/db.js";
import { pushImage } from "../support/oci_push.js";
import { registrySkipReason, startRegistry } from "../support/registry.js";
import { waitFor } from "../support/wait_for.js";

const skip = registrySkipReason();

async function addRegistry(pool: pg.Pool, name: string, url: string): Promise<number> {
  const r = await pool.query<{ id: number }>("insert into ebb.registries (name, base_url) values ($1, $2) returning id", [name, url]);
  return r.rows[0]!.id;
}

async function catalogOf(pool: pg.Pool, repo: string): Promise<{ digests: string[]; tags: Record<string, string>; stale: string | null }> {
  const a = await pool.query<{ digest: string }>(
    "select a.digest from ebb.artifacts a join ebb.repositories r on r.id = a.repository_id where r.name = $1 order by 1", [repo]);
  const t = await pool.query<{ name: string; digest: string }>(
    "select t.name, t.digest from ebb.tags t join ebb.repositories r on r.id = t.repository_id where r.name = $1 order by 1", [repo]);
  const r = await pool.query<{ stale_reason: string | null }>("select stale_reason from ebb.repositories where name = $1", [repo]);
  return {
    digests: a.rows.map((row) => row.digest),
    tags: Object.fromEntries(t.rows.map((row) => [row.name, row.digest])),
    stale: r.rows[0]?.stale_reason ?? null,
  };
}

/** A connection of its own (not the pool's), with session settings. */
async function connect(url: string, options: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, options, application_name: "ebb:test-conflict" });
  c.on("error", () => {});
  await c.connect();
  return c;
}

/** The backend pids of `pool`'s application waiting on a lock held by `holderPid`. */
async function waitingOn(admin: pg.Client, holderPid: number, applicationName: string): Promise<number[]> {
  const r = await admin.query<{ pid: number }>(
    `select pid from pg_stat_activity
      where application_name = $2 and wait_event_type = 'Lock' and $1 = any(pg_blocking_pids(pid))`,
    [holderPid, applicationName],
  );
  return r.rows.map((row) => row.pid);
}

test("a manifest deleted (registry and catalog) while a sync reads its repository is absent afterwards, and the sync ends ok", { skip, timeout: 60_000 }, async (t) => {
  const db = await freshDatabase(t);
  const reg = await startRegistry(t);
  const client = new RegistryClient({ baseUrl: reg.url });
  t.after(() => client.close());
  const registryId = await addRegistry(db.pool, "local", reg.url);
  const syncPool = new pg.Pool({ connectionString: db.url, max: 2, application_name: "ebb:test-sync" });
  syncPool.on("error", () => {});
  t.after(() => syncPool.end().catch(() => {}));
  const deps: SyncDeps = { pool: syncPool, client, registryId };

  const v1 = await pushImage(reg, "team/app", { tag: "v1" });
  const v2 = await pushImage(reg, "team/app", { tag: "v2" });
  assert.equal((await syncRepository(deps, "team/app")).status, "synced");
  const v3 = await pushImage(reg, "team/app", { tag: "v3" });

  // Retention deletes v1 as the sync runs: the catalog row goes in a transaction that is
  // still open while the sync reads the registry (which still has v1) and starts its write.
  const deleter = await connect(db.url, "");
  t.after(() => deleter.end().catch(() => {}));
  await deleter.query("begin");
  await deleter.query(
    "delete from ebb.artifacts a using ebb.repositories r where r.id = a.repository_id and r.name = 'team/app' and a.digest = $1",
    [v1.digest],
  );
  const deleterPid = (await deleter.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid;
  const admin = await connect(db.url, "");
  t.after(() => admin.end().catch(() => {}));

  const syncing = syncRepository(deps, "team/app");
  // the sync's write now waits for the deleting transaction; the manifest then goes from
  // the registry too and the deletion commits
  await waitFor("the sync's catalog write to wait for the deleting transaction", async () => (await waitingOn(admin, deleterPid, "ebb:test-sync")).length > 0, 30_000, 20);
  const del = await fetch(`${reg.url}/v2/team/app/manifests/${v1.digest}`, { method: "DELETE" });
  assert.equal(del.status, 202);
  await del.arrayBuffer();
  await deleter.query("commit");

  const result = await syncing;
  assert.equal(result.status, "synced", `sync result: ${JSON.stringify(result)}`);
  const after = await catalogOf(db.pool, "team/app");
  assert.equal(after.stale, null, "the repository is not STALE");
  assert.deepEqual(after.digests, [v2.digest, v3.digest].sort(), "v1 stays deleted; v3 (new) is added");
  assert.deepEqual(after.tags, { v2: v2.digest, v3: v3.digest });

  // and the next sync agrees with the registry
  const again = await syncRegistry(deps);
  assert.deepEqual(again.repositories.map((r) => [r.repository, r.status]), [["team/app", "synced"]]);
  assert.deepEqual((await catalogOf(db.pool, "team/app")).tags, { v2: v2.digest, v3: v3.digest });
});

test("a sync whose catalog write deadlocks with another writer (opposite lock order) retries and ends ok, not STALE", { skip, timeout: 90_000 }, async (t) => {
  const db = await freshDatabase(t);
  const reg = await startRegistry(t);
  const client = new RegistryClient({ baseUrl: reg.url });
  t.after(() => client.close());
  const registryId = await addRegistry(db.pool, "local", reg.url);
  // The sync's connections detect deadlocks after 3 s, the other writer's after 60 s: the
  // sync's backend is the one PostgreSQL aborts (40P01), whatever the machine's load.
  const syncPool = new pg.Pool({ connectionString: db.url, max: 2, application_name: "ebb:test-sync", options: "-c deadlock_timeout=3s" });
  syncPool.on("error", () => {});
  t.after(() => syncPool.end().catch(() => {}));
  const retries: string[] = [];
  const deps: SyncDeps = {
    pool: syncPool, client, registryId,
    logger: { info: () => {}, warn: (obj, msg) => retries.push(`${msg} ${JSON.stringify(obj)}`) },
  };

  const v1 = await pushImage(reg, "team/app", { tag: "v1" });
  await pushImage(reg, "team/app", { tag: "v2" });
  assert.equal((await syncRepository(deps, "team/app")).status, "synced");
  const v3 = await pushImage(reg, "team/app", { tag: "v3" });
  const repositoryId = (await db.pool.query<{ id: number }>("select id from ebb.repositories where name = 'team/app'")).rows[0]!.id;

  // The other writer: holds v1's artifact row, and will then ask for the repository row -
  // the opposite of the sync's order (repository, then artifacts).
  const other = await connect(db.url, "-c deadlock_timeout=60s");
  t.after(() => other.end().catch(() => {}));
  await other.query("begin");
  await other.query("update ebb.artifacts set pulled_at = now() where repository_id = $1 and digest = $2", [repositoryId, v1.digest]);
  const otherPid = (await other.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid;
  const admin = await connect(db.url, "");
  t.after(() => admin.end().catch(() => {}));

  const syncing = syncRepository(deps, "team/app");
  await waitFor("the sync's catalog write to wait for the other writer", async () => (await waitingOn(admin, otherPid, "ebb:test-sync")).length > 0, 30_000, 20);
  // close the cycle: the other writer now waits for the repository row the sync holds
  const closing = other.query("select id from ebb.repositories where id = $1 for share", [repositoryId]);
  await closing; // returns once PostgreSQL aborted the sync's transaction
  await other.query("commit");

  const result = await syncing;
  assert.equal(result.status, "synced", `sync result: ${JSON.stringify(result)}`);
  assert.ok(retries.some((line) => line.includes("retrying") && line.includes("deadlock")), `a retry was logged: ${retries.join("\n")}`);
  const after = await catalogOf(db.pool, "team/app");
  assert.equal(after.stale, null, "the repository is not STALE");
  assert.equal(after.tags["v3"], v3.digest, "the retried write brought v3 in");
  const pulled = await db.pool.query("select pulled_at from ebb.artifacts where repository_id = $1 and digest = $2", [repositoryId, v1.digest]);
  assert.notEqual(pulled.rows[0].pulled_at, null, "the other writer's update survived");
});
