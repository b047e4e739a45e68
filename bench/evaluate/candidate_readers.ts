// Two ways to read one repository's retention candidates from ebb's catalog, producing the
// same Candidate[] for the same pure evaluator:
//
//  - ebb: ONE set-based query per repository (issue 4: "candidates are read in one set-based
//    query per repository, not 10 per page"): ebb's own reader, readRepositoryCandidates
//    (src/retention/candidates_query.ts), the statement every retention task runs.
//  - Harbor-style peer: pages of 10 candidates (Harbor's retention page size), one query per
//    page, LIMIT 10 OFFSET k, until a short page. Each page query carries the tags and edges
//    of its 10 artifacts, so the peer is if anything favoured: Harbor also pays an HTTP round
//    trip per page and re-reads immutable rules per candidate.
//
// The peer orders by (pushed_at desc, digest), the retention tie-break, a scan of
// artifacts_repository_pushed_idx (repository_id, pushed_at desc, digest). Tags are read with
// tags_artifact_idx (repository_id, digest); edges with the artifact_references primary key.
import type pg from "pg";
import type { Candidate } from "../../src/retention/candidate.js";
import { readRepositoryCandidates } from "../../src/retention/candidates_query.js";

interface CandidateRow {
  digest: string;
  media_type: string;
  pushed: number;
  pulled: number | null;
  tag_names: string[] | null;
  tag_pushed: (number | null)[] | null;
  tag_pulled: (number | null)[] | null;
  subject: string | null;
  children: string[] | null;
}

const COLUMNS = `
  a.digest, a.media_type,
  extract(epoch from a.pushed_at)::float8 * 1000 as pushed,
  extract(epoch from a.pulled_at)::float8 * 1000 as pulled,
  t.tag_names, t.tag_pushed, t.tag_pulled, r.subject, r.children`;

// tags and edges of the artifacts in `a`, aggregated per digest
const JOINS = `
  left join lateral (
    select array_agg(tg.name order by tg.name) as tag_names,
           array_agg(extract(epoch from tg.pushed_at)::float8 * 1000 order by tg.name) as tag_pushed,
           array_agg(extract(epoch from tg.pulled_at)::float8 * 1000 order by tg.name) as tag_pulled
    from ebb.tags tg                                   -- tags_artifact_idx
    where tg.repository_id = a.repository_id and tg.digest = a.digest
  ) t on true
  left join lateral (
    select min(ar.ref_digest) filter (where ar.kind = 'subject') as subject,
           array_agg(ar.ref_digest) filter (where ar.kind = 'index_child') as children
    from ebb.artifact_references ar                    -- artifact_references primary key
    where ar.repository_id = a.repository_id and ar.digest = a.digest
  ) r on true`;

export const PAGED_SQL = `
  select ${COLUMNS}
  from (select * from ebb.artifacts
        where repository_id = $1
        order by pushed_at desc, digest                -- artifacts_repository_pushed_idx
        limit $2 offset $3) a
  ${JOINS}
  order by a.pushed_at desc, a.digest`;

export const HARBOR_PAGE_SIZE = 10;

function toCandidate(row: CandidateRow): Candidate {
  const names = row.tag_names ?? [];
  const c: Candidate = {
    digest: row.digest,
    tags: names.map((name, k) => ({
      name,
      pushed_at: row.tag_pushed?.[k] ?? null,
      pulled_at: row.tag_pulled?.[k] ?? null,
    })),
    pushed_at: row.pushed,
    pulled_at: row.pulled,
    media_type: row.media_type,
  };
  if (row.subject) c.subject = row.subject;
  if (row.children) c.children = row.children;
  return c;
}

export interface ReadResult {
  candidates: Candidate[];
  queries: number;
}

/** ebb's own reader, exactly what a retention task runs (src/retention/candidates_query.ts). */
export async function readCandidatesSetBased(pool: pg.Pool, repositoryId: number): Promise<ReadResult> {
  const { candidates } = await readRepositoryCandidates(pool, repositoryId);
  return { candidates, queries: 1 };
}

export async function readCandidatesPaged(pool: pg.Pool, repositoryId: number, pageSize = HARBOR_PAGE_SIZE): Promise<ReadResult> {
  const candidates: Candidate[] = [];
  let queries = 0;
  for (let offset = 0; ; offset += pageSize) {
    const { rows } = await pool.query<CandidateRow>({
      name: "bench_candidates_paged",
      text: PAGED_SQL,
      values: [repositoryId, pageSize, offset],
    });
    queries++;
    for (const row of rows) candidates.push(toCandidate(row));
    if (rows.length < pageSize) break;
  }
  return { candidates, queries };
}
