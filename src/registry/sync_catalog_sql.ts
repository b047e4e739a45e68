/**
 * The catalog statements of sync (tables in migrations/0001_schema.sql). Each function
 * takes the pool and holds a connection only for its own short statements/transaction:
 * never across HTTP.
 */
import type pg from "pg";
import type { KnownRepository, RepositorySnapshot } from "./sync_snapshot.js";

const MAX_REASON = 2000;

export interface RegistryRow {
  id: number;
  name: string;
  base_url: string;
}

export async function findRegistry(pool: pg.Pool, name: string): Promise<RegistryRow | undefined> {
  // registries_name_key (unique)
  const r = await pool.query<RegistryRow>("select id, name, base_url from ebb.registries where name = $1", [name]);
  return r.rows[0];
}

/** A registry's name and its explicit repository list (registries.repositories; null = use /v2/_catalog). */
export async function readRegistryDiscovery(pool: pg.Pool, registryId: number): Promise<{ name: string; repositories: string[] | null } | undefined> {
  const r = await pool.query<{ name: string; repositories: string[] | null }>(
    "select name, repositories from ebb.registries where id = $1", [registryId],
  );
  return r.rows[0];
}

/** Names of the repositories of a registry the catalog holds (not deleted). */
export async function knownRepositoryNames(pool: pg.Pool, registryId: number): Promise<string[]> {
  // repositories_registry_id_name_key
  const r = await pool.query<{ name: string }>(
    "select name from ebb.repositories where registry_id = $1 and deleted_at is null order by name", [registryId],
  );
  return r.rows.map((row) => row.name);
}

/** What the catalog knows of one repository (empty when it has no row). */
export async function readKnownRepository(pool: pg.Pool, registryId: number, name: string): Promise<KnownRepository> {
  // artifacts pkey (repository_id, digest) and tags pkey (repository_id, name); the
  // uninspected digests come from the same scan of the repository's artifacts
  const r = await pool.query<{ digests: string[] | null; uninspected: string[] | null; tags: string[] | null }>(
    `select a.digests, a.uninspected,
            (select array_agg(t.name) from ebb.tags t where t.repository_id = rp.id) as tags
       from ebb.repositories rp
       cross join lateral (
         select array_agg(x.digest) as digests,
                array_agg(x.digest) filter (where x.inspected_at is null) as uninspected
           from ebb.artifacts x where x.repository_id = rp.id) a
      where rp.registry_id = $1 and rp.name = $2`,
    [registryId, name],
  );
  const row = r.rows[0];
  return { digests: new Set(row?.digests ?? []), tags: new Set(row?.tags ?? []), uninspected: new Set(row?.uninspected ?? []) };
}

export interface WriteCounts {
  artifactsAdded: number;
  /** known artifacts that had never been inspected (push events), now read in full */
  artifactsInspected: number;
  artifactsRemoved: number;
  tagsUpserted: number;
  tagsRemoved: number;
}

/** SQLSTATEs a catalog write retries: deadlock_detected, serialization_failure, foreign_key_violation. */
const RETRYABLE = new Set(["40P01", "40001", "23503"]);
/** Attempts of one snapshot write before it is reported as failed (the repository goes STALE). */
export const WRITE_ATTEMPTS = 5;

export function isRetryableWriteError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && RETRYABLE.has(code);
}

/**
 * Apply a snapshot (see writeSnapshotOnce), retrying a transaction that lost a lock conflict:
 * deadlock or serialization failure (another catalog writer held rows in the other order),
 * or a foreign key violation (a manifest deleted between two statements). Every attempt
 * reapplies the same snapshot to the catalog as it is then, so the writers converge.
 */
export async function writeRepositorySnapshot(
  pool: pg.Pool, registryId: number, s: RepositorySnapshot,
  opts: { onRetry?: (attempt: number, err: Error) => void; attempts?: number } = {},
): Promise<WriteCounts> {
  const attempts = opts.attempts ?? WRITE_ATTEMPTS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await writeSnapshotOnce(pool, registryId, s);
    } catch (err) {
      if (!isRetryableWriteError(err) || attempt >= attempts) {
        if (attempt > 1 && err instanceof Error) err.message = `${err.message} (after ${attempt} attempts)`;
        throw err;
      }
      opts.onRetry?.(attempt, err as Error);
      await new Promise((r) => setTimeout(r, 20 * attempt + Math.floor(Math.random() * 50)));
    }
  }
}

/**
 * Apply a snapshot in ONE transaction: upsert the repository (clearing STALE), insert new
 * artifacts and their references, complete the artifacts known only from push events with
 * what their manifests say (inspected_at, created_at, artifactType, references), remove the digests the registry confirmed gone, upsert
 * the tags it lists and remove the known tags it no longer lists. Rows that appeared while
 * the sync was reading (pushed meanwhile, e.g. through notifications) are left alone.
 *
 * Lock order, shared with the other catalog writers (pull flush, push events, deletion
 * outcomes): the repository row first, then its artifact rows in digest order, then tags in
 * name order. A manifest deleted from the catalog while the sync was reading (by retention
 * or a delete event) is absent once its row is locked: its tags and references are not
 * written, so it stays absent and nothing fails.
 */
async function writeSnapshotOnce(pool: pg.Pool, registryId: number, s: RepositorySnapshot): Promise<WriteCounts> {
  const client = await pool.connect();
  try {
    await client.query("begin");
    const repo = await client.query<{ id: number }>(
      `insert into ebb.repositories (registry_id, name, last_synced_at, deleted_at)
       values ($1, $2, now(), case when $3::boolean then null else now() end)
       on conflict (registry_id, name) do update
         set stale = false, stale_reason = null, stale_since = null, last_synced_at = now(),
             deleted_at = case when $3::boolean then null else coalesce(ebb.repositories.deleted_at, now()) end
       returning id`,
      [registryId, s.repository, s.exists],
    );
    const repositoryId = repo.rows[0]!.id;

    // Every artifact row this write touches, locked in digest order (artifacts pkey). Rows
    // deleted meanwhile are not returned and stay deleted.
    const touched = [...new Set([
      ...s.tags.values(), ...s.newArtifacts.keys(), ...s.inspectedArtifacts.keys(), ...s.vanished,
    ])].sort();
    await client.query(
      `select 1 from ebb.artifacts where repository_id = $1 and digest = any($2::text[])
        order by digest for update`,
      [repositoryId, touched],
    );

    // New artifacts, inspected now. One pushed meanwhile (a push event wrote it while sync was
    // reading) is the same manifest (same digest): complete it too.
    const added = [...s.newArtifacts.values()].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
    const inserted = await client.query(
      `insert into ebb.artifacts (repository_id, digest, media_type, artifact_type, size, created_at, pushed_at_source, inspected_at)
       select $1, d, m, at, sz, c, 'sync', now()
         from unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[]) as u(d, m, at, sz, c)
       on conflict (repository_id, digest) do update
         set media_type = excluded.media_type, artifact_type = excluded.artifact_type, size = excluded.size,
             created_at = coalesce(excluded.created_at, ebb.artifacts.created_at), inspected_at = now()`,
      [repositoryId, added.map((a) => a.digest), added.map((a) => a.mediaType), added.map((a) => a.artifactType),
        added.map((a) => a.size), added.map((a) => a.createdAt)],
    );
    // Known artifacts never inspected (from push events), now read: artifacts pkey. A row
    // deleted meanwhile (delete event, retention) is not brought back.
    const completed = [...s.inspectedArtifacts.values()];
    const inspected = await client.query(
      `update ebb.artifacts a
          set media_type = u.m, artifact_type = u.at, size = u.sz,
              created_at = coalesce(u.c, a.created_at), inspected_at = now()
         from unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[]) as u(d, m, at, sz, c)
        where a.repository_id = $1 and a.digest = u.d`,
      [repositoryId, completed.map((a) => a.digest), completed.map((a) => a.mediaType), completed.map((a) => a.artifactType),
        completed.map((a) => a.size), completed.map((a) => a.createdAt)],
    );
    // References declared by every manifest read. An edge a push event recorded without its
    // platform gets it now. Only for artifacts still in the catalog (artifacts pkey).
    const refs = [...added, ...completed].flatMap((a) => a.references.map((r) => ({ digest: a.digest, ...r })));
    await client.query(
      `insert into ebb.artifact_references (repository_id, digest, kind, ref_digest, platform)
       select $1, u.d, u.k, u.r, u.p from unnest($2::text[], $3::text[], $4::text[], $5::text[]) as u(d, k, r, p)
        where exists (select 1 from ebb.artifacts a where a.repository_id = $1 and a.digest = u.d)
       on conflict (repository_id, digest, kind, ref_digest) do update
         set platform = excluded.platform
         where ebb.artifact_references.platform is distinct from excluded.platform`,
      [repositoryId, refs.map((r) => r.digest), refs.map((r) => r.kind), refs.map((r) => r.refDigest), refs.map((r) => r.platform)],
    );
    // artifacts pkey; tags and references go with them (on delete cascade)
    const removed = await client.query(
      "delete from ebb.artifacts where repository_id = $1 and digest = any($2::text[])", [repositoryId, s.vanished],
    );
    // Tags in name order, only onto artifacts still in the catalog: a tag whose manifest was
    // deleted meanwhile went with it (cascade) and is not written back.
    const tagNames = [...s.tags.keys()].sort();
    const tags = await client.query(
      `insert into ebb.tags (repository_id, name, digest)
       select $1, n, d from unnest($2::text[], $3::text[]) as u(n, d)
        where exists (select 1 from ebb.artifacts a where a.repository_id = $1 and a.digest = u.d)
       on conflict (repository_id, name) do update
         set digest = excluded.digest,
             pushed_at = case when ebb.tags.digest = excluded.digest then ebb.tags.pushed_at end,
             pulled_at = case when ebb.tags.digest = excluded.digest then ebb.tags.pulled_at end
         where ebb.tags.digest <> excluded.digest`,
      [repositoryId, tagNames, tagNames.map((n) => s.tags.get(n)!)],
    );
    // tags pkey (repository_id, name)
    const tagsRemoved = await client.query(
      "delete from ebb.tags where repository_id = $1 and name = any($2::text[])", [repositoryId, [...s.vanishedTags].sort()],
    );
    await client.query("update ebb.registries set last_synced_at = now() where id = $1", [registryId]);
    await client.query("commit");
    return {
      artifactsAdded: inserted.rowCount ?? 0,
      artifactsInspected: inspected.rowCount ?? 0,
      artifactsRemoved: removed.rowCount ?? 0,
      tagsUpserted: tags.rowCount ?? 0,
      tagsRemoved: tagsRemoved.rowCount ?? 0,
    };
  } catch (err) {
    await client.query("rollback").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Mark repositories STALE with a reason (created as rows when unknown, so a repository the
 * catalog never saw is not mistaken for an empty one). Nothing else changes.
 * @param names the repositories; undefined = every non-deleted repository of the registry.
 */
export async function markRepositoriesStale(pool: pg.Pool, registryId: number, names: string[] | undefined, reason: string): Promise<number> {
  const text = reason.length > MAX_REASON ? `${reason.slice(0, MAX_REASON - 1)}…` : reason;
  if (names === undefined) {
    // repositories_registry_id_name_key (prefix registry_id)
    const r = await pool.query(
      `update ebb.repositories
          set stale = true, stale_reason = $2, stale_since = coalesce(stale_since, now())
        where registry_id = $1 and deleted_at is null`,
      [registryId, text],
    );
    return r.rowCount ?? 0;
  }
  const r = await pool.query(
    `insert into ebb.repositories (registry_id, name, stale, stale_reason, stale_since)
     select $1, n, true, $3, now() from unnest($2::text[]) as u(n)
     on conflict (registry_id, name) do update
       set stale = true, stale_reason = excluded.stale_reason,
           stale_since = coalesce(ebb.repositories.stale_since, now())`,
    [registryId, names, text],
  );
  return r.rowCount ?? 0;
}
