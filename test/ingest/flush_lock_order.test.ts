// The pull flush follows the catalog writers' lock order (repository row, then artifacts by
// digest, then tags by name): while a sync's write holds a repository, a flush of that
// repository's pulls waits for it instead of taking artifact rows the sync still needs, so
// the two never deadlock and both land. Real PostgreSQL; the "sync" is a transaction taking
// the locks a sync's catalog write takes: its repository row first, then artifacts (the
// sync's digest order, and the reverse for good measure).
import assert from "node:assert/strict";
import { test } from "node:test";
import pg from "pg";
import { flushPulls } from "../../src/ingest/pull_flush_sql.js";
import { freshDatabase } from "../support/db.js";
import { waitFor } from "../support/wait_for.js";
import { digestOf, seedRegistry } from "./support/events_server.js";

// Both orders: whichever artifact the flush would reach first, the sync holds the other.
for (const syncFirst of ["lower digest", "higher digest"] as const) {
test(`a flush waits for a sync's write of the same repository and then applies; no deadlock, nothing lost (sync holds the ${syncFirst} first)`, { timeout: 60_000 }, async (t) => {
  const db = await freshDatabase(t);
  const registryId = await seedRegistry(db.pool, "local");
  const repo = await db.pool.query<{ id: number }>("insert into ebb.repositories (registry_id, name) values ($1, 'team/app') returning id", [registryId]);
  const repositoryId = repo.rows[0]!.id;
  const sorted = [digestOf("a"), digestOf("b")].sort() as [string, string];
  const [b, a] = syncFirst === "lower digest" ? sorted : [sorted[1], sorted[0]];
  for (const [d, tag] of [[a, "ta"], [b, "tb"]] as const) {
    await db.pool.query("insert into ebb.artifacts (repository_id, digest, media_type, size) values ($1, $2, 'application/vnd.oci.image.manifest.v1+json', 1)", [repositoryId, d]);
    await db.pool.query("insert into ebb.tags (repository_id, name, digest) values ($1, $2, $3)", [repositoryId, tag, d]);
  }

  // the sync: repository row, then artifact b (then a); its deadlock timeout is long, so if a cycle
  // formed the flush would be the one PostgreSQL aborts
  const sync = new pg.Client({ connectionString: db.url, options: "-c deadlock_timeout=60s", application_name: "ebb:test-sync" });
  sync.on("error", () => {});
  await sync.connect();
  t.after(() => sync.end().catch(() => {}));
  await sync.query("begin");
  await sync.query("update ebb.repositories set last_synced_at = now() where id = $1", [repositoryId]);
  await sync.query("update ebb.artifacts set inspected_at = now() where repository_id = $1 and digest = $2", [repositoryId, b]);
  const syncPid = (await sync.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid;

  const flushPool = new pg.Pool({ connectionString: db.url, max: 1, application_name: "ebb:test-flush", options: "-c deadlock_timeout=2s" });
  flushPool.on("error", () => {});
  t.after(() => flushPool.end().catch(() => {}));
  const at = Date.parse("2026-01-02T03:04:05Z");
  const flushing = flushPulls(flushPool, [
    { registryId, repository: "team/app", digest: a, tag: "ta", at },
    { registryId, repository: "team/app", digest: b, tag: "tb", at },
  ]);
  await waitFor("the flush to wait for the sync", async () => (await db.pool.query(
    "select 1 from pg_stat_activity where application_name = 'ebb:test-flush' and $1 = any(pg_blocking_pids(pid))", [syncPid])).rowCount, 30_000, 20);
  // the sync goes on to artifact a and the tags: nothing of the flush is in its way
  await sync.query("update ebb.artifacts set inspected_at = now() where repository_id = $1 and digest = $2", [repositoryId, a]);
  await sync.query("update ebb.tags set pushed_at = now() where repository_id = $1", [repositoryId]);
  await sync.query("commit");

  assert.deepEqual(await flushing, { artifacts: 2, tags: 2 });
  const rows = await db.pool.query<{ digest: string; pulled_at: Date; inspected_at: Date | null }>(
    "select digest, pulled_at, inspected_at from ebb.artifacts order by digest");
  for (const row of rows.rows) {
    assert.equal(row.pulled_at.toISOString(), "2026-01-02T03:04:05.000Z", `${row.digest} pulled_at flushed`);
    assert.notEqual(row.inspected_at, null, `${row.digest}: the sync's write kept`);
  }
  const tags = await db.pool.query("select name, pulled_at, pushed_at from ebb.tags order by name");
  for (const row of tags.rows) {
    assert.equal(row.pulled_at.toISOString(), "2026-01-02T03:04:05.000Z", `tag ${row.name} pulled_at flushed`);
    assert.notEqual(row.pushed_at, null);
  }
});
}
