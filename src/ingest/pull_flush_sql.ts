/**
 * Write a batch of coalesced pulls in ONE statement: the batch travels as arrays, is
 * joined to the repositories, and moves pulled_at of artifacts (and of tags for pulls by
 * tag) forward - never backward, so replays and out-of-order flushes are harmless.
 * Pulls of artifacts the catalog does not hold match nothing (a later sync adds them).
 */
import type pg from "pg";
import type { PullEntry } from "./pull_buffer.js";

// Indexes used: repositories_registry_id_name_key (registry_id, name), artifacts pkey
// (repository_id, digest), tags pkey (repository_id, name).
const FLUSH_PULLS_SQL = `
with batch as (
  select rp.id as repository_id, u.digest, u.tag, u.pulled_at
    from unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
         as u(registry_id, repository, digest, tag, pulled_at)
    join ebb.repositories rp on rp.registry_id = u.registry_id and rp.name = u.repository
), per_artifact as (
  select repository_id, digest, max(pulled_at) as pulled_at from batch group by repository_id, digest
), artifacts_updated as (
  update ebb.artifacts a
     set pulled_at = p.pulled_at
    from per_artifact p
   where a.repository_id = p.repository_id and a.digest = p.digest
     and (a.pulled_at is null or a.pulled_at < p.pulled_at)
  returning 1
), tags_updated as (
  update ebb.tags t
     set pulled_at = b.pulled_at
    from batch b
   where b.tag is not null
     and t.repository_id = b.repository_id and t.name = b.tag and t.digest = b.digest
     and (t.pulled_at is null or t.pulled_at < b.pulled_at)
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
  return { artifacts: r.rows[0]?.artifacts ?? 0, tags: r.rows[0]?.tags ?? 0 };
}
