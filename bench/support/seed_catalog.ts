// Seeds ebb's catalog with plain SQL (the seeding contract at the top of
// migrations/0001_schema.sql): one registry, N repositories, M artifacts per repository,
// tags on most artifacts, cosign-style signature referrers, push/pull times spread over
// ~83 days. Everything is generated server-side with generate_series; nothing crosses the wire.
//
// Repository r (its id) is named proj<ceil(r/2)>/repo-<r>; artifact i in 0..M-1:
//   digest     sha256(r:i)
//   pushed_at  now - ((r*7 + i*13) % 2000) hours - i seconds   (spread, few ties)
//   pulled_at  pushed_at + 1 hour when i % 3 = 0, else never
//   referrer   i % 25 = 24: a signature whose subject is artifact i-1, untagged
//   tags       untagged when i % 10 = 9 or it is a referrer; else one of release-i (i%5=0),
//              v1.<i%7>.<i> (i%5=1), build-i; artifacts with i % 4 = 0 also carry sha-i
import type pg from "pg";

export interface CatalogShape {
  repositories: number;
  artifactsPerRepository: number;
}

export interface SeedResult {
  registryId: number;
  repositories: number;
  artifacts: number;
  tags: number;
  references: number;
  seconds: number;
  now: Date;
}

/**
 * Repository g is `proj<ceil(g/2)>/repo-<g>`: two repositories per project (Harbor scopes a
 * retention policy to one project; the midnight storm gives each of 10,000 policies its own
 * project of 2 repositories, so 10,000 policies cover the 20,000 repositories once).
 */
export const REPOSITORY_NAME_SQL = "'proj' || ((g + 1) / 2) || '/repo-' || g";

/** Seeds into the (fresh, migrated) database behind `pool`. Times are relative to `now`. */
export async function seedCatalog(pool: pg.Pool, shape: CatalogShape, now = new Date()): Promise<SeedResult> {
  const started = performance.now();
  const client = await pool.connect();
  try {
    await client.query("set synchronous_commit = off");
    await client.query("set maintenance_work_mem = '256MB'");
    await client.query(`
      create function pg_temp.bench_digest(r bigint, i int) returns text
      language sql immutable as $$ select 'sha256:' || encode(sha256(convert_to(r || ':' || i, 'UTF8')), 'hex') $$`);
    await client.query("begin");
    const { rows } = await client.query<{ id: number }>(
      "insert into ebb.registries (name, base_url) values ('bench', 'http://127.0.0.1:5999') returning id",
    );
    const registryId = rows[0]!.id;
    await client.query(
      `insert into ebb.repositories (registry_id, name)
       select $1, ${REPOSITORY_NAME_SQL} from generate_series(1, $2) g`,
      [registryId, shape.repositories],
    );
    const perRepo = [shape.artifactsPerRepository - 1, now.toISOString()];
    const artifacts = await client.query(
      `insert into ebb.artifacts (repository_id, digest, media_type, artifact_type, size, pushed_at, pushed_at_source, pulled_at)
       select rep.id, pg_temp.bench_digest(rep.id, i),
              'application/vnd.oci.image.manifest.v1+json',
              case when i % 25 = 24 then 'application/vnd.dev.cosign.artifact.sig.v1+json' end,
              1000 + i,
              t.pushed, 'seed',
              case when i % 3 = 0 then t.pushed + interval '1 hour' end
       from ebb.repositories rep
       cross join generate_series(0, $1::int) i
       cross join lateral (select $2::timestamptz - ((rep.id * 7 + i * 13) % 2000) * interval '1 hour'
                                  - i * interval '1 second' as pushed) t
       order by rep.id, i`,
      perRepo,
    );
    const tags = await client.query(
      `insert into ebb.tags (repository_id, name, digest, pushed_at, pulled_at)
       select rep.id, n.name, pg_temp.bench_digest(rep.id, i), null, null
       from ebb.repositories rep
       cross join generate_series(0, $1::int) i
       cross join lateral (
         select case when i % 5 = 0 then 'release-' || i
                     when i % 5 = 1 then 'v1.' || (i % 7) || '.' || i
                     else 'build-' || i end as name
         union all
         select 'sha-' || i where i % 4 = 0
       ) n
       where i % 10 <> 9 and i % 25 <> 24`,
      [shape.artifactsPerRepository - 1],
    );
    const references = await client.query(
      `insert into ebb.artifact_references (repository_id, digest, kind, ref_digest)
       select rep.id, pg_temp.bench_digest(rep.id, i), 'subject', pg_temp.bench_digest(rep.id, i - 1)
       from ebb.repositories rep
       cross join generate_series(0, $1::int) i
       where i % 25 = 24`,
      [shape.artifactsPerRepository - 1],
    );
    await client.query("commit");
    await client.query("analyze ebb.repositories, ebb.artifacts, ebb.tags, ebb.artifact_references");
    return {
      registryId,
      repositories: shape.repositories,
      artifacts: artifacts.rowCount ?? 0,
      tags: tags.rowCount ?? 0,
      references: references.rowCount ?? 0,
      seconds: (performance.now() - started) / 1000,
      now,
    };
  } catch (err) {
    await client.query("rollback").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
