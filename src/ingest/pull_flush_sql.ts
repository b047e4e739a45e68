/**
 * Write a batch of coalesced pulls in ONE statement: the batch travels as arrays, is
 * joined to the repositories, and moves pulled_at of artifacts (and of tags for pulls by
 * tag) forward - never backward, so replays and out-of-order flushes are harmless.
 * Pulls of artifacts the catalog does not hold match nothing (a later sync adds them).
 *
 * Lock order, the one every catalog writer follows (see registry/sync_catalog_sql.ts): the
 * repository rows first (shared, in id order), then artifact rows in (repository, digest)
 * order, then tag rows in (repository, name) order. A flush therefore waits for a sync or a
 * push of the same repository instead of deadlocking with it.
 */
import type pg from "pg";
import type { PullEntry } from "./pull_buffer.js";

// Indexes used: repositories_registry_id_name_key (registry_id, name), artifacts pkey
// (repository_id, digest), tags pkey (repository_id, name).
// Rows are locked by the sorted CTEs before the updates touch them (an UPDATE alone locks in
// whatever order its join produces): a sort reads all its input before its first row is
// locked, so every repository of the batch is locked (shared, id order) before any artifact,
// and artifacts (key order) before tags (key order).
const FLUSH_PULLS_SQL = `
with pulls as (
  select u.registry_id, u.repository, u.digest, u.tag, u.pulled_at
    from unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
         as u(registry_id, repository, digest, tag, pulled_at)
), repositories_locked as (
  select rp.id, rp.registry_id, rp.name
    from ebb.repositories rp
   where (rp.registry_id, rp.name) in (select registry_id, repository from pulls)
   order by rp.id
     for share of rp
), batch as (
  select rp.id as repository_id, u.digest, u.tag, u.pulled_at
    from pulls u
    join repositories_locked rp on rp.registry_id = u.registry_id and rp.name = u.repository
), per_artifact as (
  select repository_id, digest, max(pulled_at) as pulled_at from batch group by repository_id, digest
), artifacts_locked as (
  select a.repository_id, a.digest, p.pulled_at
    from ebb.artifacts a
    join per_artifact p on a.repository_id = p.repository_id and a.digest = p.digest
   where a.pulled_at is null or a.pulled_at < p.pulled_at
   order by a.repository_id, a.digest
     for no key update of a
), artifacts_updated as (
  update ebb.artifacts a
     set pulled_at = l.pulled_at
    from artifacts_locked l
   where a.repository_id = l.repository_id and a.digest = l.digest
  returning 1
), tags_locked as (
  select t.repository_id, t.name, b.pulled_at
    from ebb.tags t
    join batch b on t.repository_id = b.repository_id and t.name = b.tag and t.digest = b.digest
   where b.tag is not null
     and (t.pulled_at is null or t.pulled_at < b.pulled_at)
   order by t.repository_id, t.name
     for no key update of t
), tags_updated as (
  update ebb.tags t
     set pulled_at = l.pulled_at
    from tags_locked l
   where t.repository_id = l.repository_id and t.name = l.name
  returning 1
)
select (select count(*) from artifacts_updated) as artifacts, (select count(*) from tags_updated) as tags`;

export interface FlushCounts {
  artifacts: number;
  tags: number;
}

/** The one statement of a flush. A tag names one digest, so each tag row joins at most one batch row. */
export async function flushPulls(db: pg.Pool | pg.PoolClient, entries: readonly PullEntry[]): Promise<FlushCounts> {
  if (entries.length === 0) return { artifacts: 0, tags: 0 };
  const r = await db.query<FlushCounts>(FLUSH_PULLS_SQL, [
    entries.map((e) => e.registryId),
    entries.map((e) => e.repository),
    entries.map((e) => e.digest),
    entries.map((e) => e.tag),
    entries.map((e) => new Date(e.at).toISOString()),
  ]);
  return { artifacts: Number(r.rows[0]?.artifacts ?? 0), tags: Number(r.rows[0]?.tags ?? 0) };
}
