/**
 * Pushes and deletes from notifications, written in one transaction per envelope before the
 * registry gets its 2xx (they are rare next to pulls). The registry sends an endpoint's
 * envelopes one at a time, in order, so these arrive in the order they happened.
 */
import type pg from "pg";
import type { CatalogChange } from "./catalog_change.js";

export interface WriteResult {
  /** repositories marked STALE because an index arrived without its children */
  staleRepositories: string[];
}

async function repositoryId(client: pg.PoolClient, registryId: number, name: string): Promise<number> {
  // repositories_registry_id_name_key; a push brings a deleted repository back
  const r = await client.query<{ id: number }>(
    `insert into ebb.repositories (registry_id, name) values ($1, $2)
     on conflict (registry_id, name) do update set deleted_at = null
       where ebb.repositories.deleted_at is not null
     returning id`,
    [registryId, name],
  );
  if (r.rows[0]) return r.rows[0].id;
  const existing = await client.query<{ id: number }>(
    "select id from ebb.repositories where registry_id = $1 and name = $2", [registryId, name],
  );
  return existing.rows[0]!.id;
}

/** Apply the non-pull changes of one envelope in order, in one transaction. */
export async function writeCatalogChanges(
  client: pg.PoolClient, registryId: number, changes: readonly CatalogChange[],
): Promise<WriteResult> {
  const staleRepositories: string[] = [];
  await client.query("begin");
  try {
    for (const c of changes) {
      if (c.kind === "push") {
        const repoId = await repositoryId(client, registryId, c.repository);
        const at = new Date(c.at).toISOString();
        // artifacts pkey. pushed_at is when the manifest arrived in the repository: a push of
        // a digest already there (a re-tag, a tag moved onto it, the same bytes again) leaves
        // it, so count rules never rank an old build as new; the tag row below records that
        // push. An earlier time (a late event; sync's first-seen time) moves it back. A digest
        // deleted and pushed again is a new row with the new time.
        await client.query(
          `insert into ebb.artifacts (repository_id, digest, media_type, size, pushed_at, pushed_at_source)
           values ($1, $2, $3, $4, $5, 'event')
           on conflict (repository_id, digest) do update
             set pushed_at = excluded.pushed_at, pushed_at_source = 'event'
             where ebb.artifacts.pushed_at > excluded.pushed_at`,
          [repoId, c.digest, c.mediaType, c.size, at],
        );
        if (c.children !== undefined && c.children.length > 0) {
          await client.query(
            `insert into ebb.artifact_references (repository_id, digest, kind, ref_digest)
             select $1, $2, 'index_child', d from unnest($3::text[]) as u(d)
             on conflict do nothing`,
            [repoId, c.digest, c.children],
          );
        } else if (c.children === undefined) {
          // An index whose children ebb cannot see: retention must not treat them as
          // unreferenced untagged manifests until a sync has read the index.
          await client.query(
            `update ebb.repositories
                set stale = true,
                    stale_reason = $2,
                    stale_since = coalesce(stale_since, now())
              where id = $1`,
            [repoId, `index ${c.digest} was pushed (notification without references: set notifications.events.includereferences: true in the registry); sync needed`],
          );
          staleRepositories.push(c.repository);
        }
        if (c.tag !== undefined) {
          // tags pkey. pushed_at is the tag's last push onto its digest (nDaysSinceLastPush
          // sees it). Moving a tag resets its pulled_at; an older push never moves it back.
          await client.query(
            `insert into ebb.tags (repository_id, name, digest, pushed_at)
             values ($1, $2, $3, $4)
             on conflict (repository_id, name) do update
               set digest = excluded.digest,
                   pushed_at = excluded.pushed_at,
                   pulled_at = case when ebb.tags.digest = excluded.digest then ebb.tags.pulled_at end
               where ebb.tags.pushed_at is null or ebb.tags.pushed_at <= excluded.pushed_at`,
            [repoId, c.tag, c.digest, at],
          );
        }
      } else if (c.kind === "delete_artifact") {
        // artifacts pkey; its tags and references go with it (on delete cascade)
        await client.query(
          `delete from ebb.artifacts a using ebb.repositories rp
            where rp.registry_id = $1 and rp.name = $2 and a.repository_id = rp.id and a.digest = $3`,
          [registryId, c.repository, c.digest],
        );
      } else if (c.kind === "delete_tag") {
        // tags pkey; the artifact stays (other tags or its digest may still be used)
        await client.query(
          `delete from ebb.tags t using ebb.repositories rp
            where rp.registry_id = $1 and rp.name = $2 and t.repository_id = rp.id and t.name = $3`,
          [registryId, c.repository, c.tag],
        );
      }
    }
    await client.query("commit");
    return { staleRepositories };
  } catch (err) {
    await client.query("rollback").catch(() => {});
    throw err;
  }
}
