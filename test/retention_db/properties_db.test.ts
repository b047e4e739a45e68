// Random policies and catalogs through the DATABASE path the worker uses: the catalog is seeded
// by plain SQL (the seeding contract in migrations/0001_schema.sql), the policy is written as rows
// (insertPolicy: PostgreSQL validates it), and a dry-run retention execution is planned and
// run by the retention kind itself (planTasks -> one task per repository -> runTask: one
// set-based candidate read, the evaluator, the batched decision insert). Then, from the
// decision rows:
//   - nothing a rule retains (recomputed by the naive reference of random_policies.ts) is
//     deleted;
//   - a repository out of the policy's scope, or selected by no enabled rule (decided by an
//     oracle written here, not by ebb's scope code), gets no task and no decision row;
//   - every touched repository's rows are exactly the pure evaluator's decisions on the same
//     data (so the SQL read loses nothing: tags, times, index children, referrers);
//   - a dry run deletes nothing: no row is left 'pending' for a registry call.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { configSchema } from "../../src/config/schema.js";
import type { ExecutionKind, TaskControl, Execution } from "../../src/executions/kind.js";
import { createLogger } from "../../src/log/logger.js";
import type { RepositoryCandidate } from "../../src/retention/candidate.js";
import { compilePolicy } from "../../src/retention/compiled_policy.js";
import { evaluateRepository } from "../../src/retention/evaluate_repository.js";
import type { Policy } from "../../src/retention/policy_schema.js";
import { insertPolicy } from "../../src/retention/policy_store.js";
import { retentionKind } from "../../src/retention/retention_kind.js";
import type { AppContext } from "../../src/service/context.js";
import { freshDatabase } from "../support/db.js";
import { DAY, NOW } from "../retention/support/catalog.js";
import { catalogArbOver, PATTERNS, policyArbWith, referenceRetained, repoPath, ruleSelectsRepo } from "../retention/support/random_policies.js";

const db = await freshDatabase();
const { q } = db;
const ctx = { pool: db.pool, logger: createLogger("silent"), config: configSchema.parse({}) } as unknown as AppContext;
const kind: ExecutionKind = retentionKind({ batchSize: 2 }); // small pages: planning pages through the registry

const NAMES = ["p/a", "p/b", "p/c/d", "q/a", "q/c/d"];
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

// scopes the oracle below understands: projects by literal or glob, repository selectors on the path
const scopeArb = fc.constantFrom<Record<string, unknown> | undefined>(
  undefined,
  { projects: [{ kind: "glob", pattern: "p" }] },
  { projects: [{ kind: "glob", pattern: "q" }], repositories: [{ decoration: "excludes", pattern: "a" }] },
  { projects: [{ kind: "glob", pattern: "*" }], repositories: [{ decoration: "matches", pattern: "c/**" }] },
);

function oracleInScope(policy: Policy, repository: string): boolean {
  const project = repository.slice(0, repository.indexOf("/"));
  const projects = policy.scope.projects.map((p) => p.pattern);
  const projectOk = projects.length === 0 || projects.some((p) => (p === "*" ? true : p === project));
  return projectOk && policy.scope.repositories.every((s) => PATTERNS[s.pattern]!(repoPath(repository)) === (s.decoration === "matches"));
}

/** The catalog as the database holds it: a push time is required (never-pushed = 30 days ago). */
function asStored(catalog: RepositoryCandidate[]): RepositoryCandidate[] {
  return catalog.map((c) => ({ ...c, pushed_at: c.pushed_at ?? NOW - 30 * DAY, media_type: c.children ? OCI_INDEX : OCI_MANIFEST }));
}

let round = 0;

async function seed(catalog: RepositoryCandidate[]): Promise<{ registryId: number; repoIds: Map<string, number> }> {
  round++;
  const [{ id: registryId }] = await q("insert into ebb.registries (name, base_url) values ($1, 'http://127.0.0.1:5000') returning id", [`r${round}`]);
  const repoIds = new Map<string, number>();
  for (const name of NAMES) {
    repoIds.set(name, (await q("insert into ebb.repositories (registry_id, name) values ($1, $2) returning id", [registryId, name]))[0].id);
  }
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  await q(
    `insert into ebb.artifacts (repository_id, digest, media_type, size, pushed_at, pushed_at_source, pulled_at)
     select repository_id, digest, media_type, 1234, pushed_at, 'seed', pulled_at
       from jsonb_to_recordset($1::jsonb) as x(repository_id bigint, digest text, media_type text, pushed_at timestamptz, pulled_at timestamptz)`,
    [JSON.stringify(catalog.map((c) => ({ repository_id: repoIds.get(c.repository), digest: c.digest, media_type: c.media_type, pushed_at: iso(c.pushed_at), pulled_at: iso(c.pulled_at) })))],
  );
  const tags = catalog.flatMap((c) => c.tags.map((t) => ({ repository_id: repoIds.get(c.repository), name: t.name, digest: c.digest, pushed_at: iso(t.pushed_at) })));
  await q(
    `insert into ebb.tags (repository_id, name, digest, pushed_at, pulled_at)
     select repository_id, name, digest, pushed_at, null
       from jsonb_to_recordset($1::jsonb) as x(repository_id bigint, name text, digest text, pushed_at timestamptz)`,
    [JSON.stringify(tags)],
  );
  const refs = catalog.flatMap((c) => [
    ...(c.children ?? []).map((child) => ({ repository_id: repoIds.get(c.repository), digest: c.digest, kind: "index_child", ref_digest: child, platform: "linux/amd64" })),
    ...(c.subject ? [{ repository_id: repoIds.get(c.repository), digest: c.digest, kind: "subject", ref_digest: c.subject, platform: null }] : []),
  ]);
  await q(
    `insert into ebb.artifact_references (repository_id, digest, kind, ref_digest, platform)
     select repository_id, digest, kind, ref_digest, platform
       from jsonb_to_recordset($1::jsonb) as x(repository_id bigint, digest text, kind text, ref_digest text, platform text)`,
    [JSON.stringify(refs)],
  );
  return { registryId, repoIds };
}

/** A dry-run retention execution of the policy, planned and run by the worker's code path. */
async function runDry(policyId: number): Promise<{ executionId: number; tasks: Map<string, { id: number; error: string | null }> }> {
  const [row] = await q(
    `insert into ebb.executions (kind, target_id, trigger, status, started_at, fire_time, dry_run)
     values ('retention', $1, 'manual', 'running', now(), $2, true) returning *`,
    [policyId, new Date(NOW).toISOString()],
  );
  const execution: Execution = { id: row.id, kind: "retention", targetId: policyId, scheduleId: null, fireTime: row.fire_time, trigger: "manual", dryRun: true };
  const tasks = new Map<string, { id: number; error: string | null }>();
  for await (const batch of kind.planTasks(ctx, execution)) {
    for (const spec of batch) {
      assert.ok(!tasks.has(spec.key), `one task per repository (${spec.key} twice)`);
      const [t] = await q("insert into ebb.tasks (execution_id, key, payload, status) values ($1, $2, $3, 'running') returning id", [row.id, spec.key, JSON.stringify(spec.payload)]);
      const control: TaskControl = {
        execution, signal: new AbortController().signal, log() {}, counts: { total: 0, retained: 0, deleted: 0, errors: 0 }, details: {},
        async checkpoint() {},
      };
      let error: string | null = null;
      try {
        await kind.runTask(ctx, { id: t.id, executionId: row.id, key: spec.key, group: spec.group ?? null, payload: spec.payload ?? {}, attempt: 1 }, control);
      } catch (err) {
        error = (err as Error).message;
      }
      tasks.set(spec.key, { id: t.id, error });
    }
  }
  return { executionId: row.id, tasks };
}

test("random policies and catalogs through the database path (dry run): rule-retained artifacts never get a delete decision, repositories out of scope get no decision rows, rows equal the pure evaluator's decisions", async (t) => {
  const seen = { rows: 0, deletes: 0, untouched: 0, aborted: 0 };
  await fc.assert(
    fc.asyncProperty(policyArbWith(scopeArb), catalogArbOver(NAMES), async (policy, generated) => {
      const catalog = asStored(generated);
      const { registryId } = await seed(catalog);
      {
        const policyId = await insertPolicy(db.pool, { ...policy, name: `random-${round}` }, { registryId, dryRun: true });
        // a seeded catalog and no registry: the dry run decides on the catalog as it is
        await q("update ebb.policies set dry_run_reads = 'catalog' where id = $1", [policyId]);
        const { executionId, tasks } = await runDry(policyId);
        const rows = await q(
          `select repository, digest, tags, action, reason, rule, role, planned_action, outcome, task_id
             from ebb.decisions where execution_id = $1`, [executionId]);
        const enabled = policy.rules.filter((r) => !r.disabled);
        for (const name of NAMES) {
          const touched = oracleInScope(policy, name) && enabled.some((r) => ruleSelectsRepo(r, name));
          const mine = rows.filter((r) => r.repository === name);
          if (!touched) {
            seen.untouched++;
            assert.ok(!tasks.has(name), `${name} is out of scope or selected by no enabled rule: no task`);
            assert.equal(mine.length, 0, `${name} is out of scope or selected by no enabled rule: no decision rows`);
            continue;
          }
          const task = tasks.get(name);
          assert.ok(task, `${name} is in scope and selected by a rule: it gets a task`);
          const candidates = catalog.filter((c) => c.repository === name);
          const expected = evaluateRepository(compilePolicy(policy), name, candidates, NOW);
          assert.equal(mine.length, candidates.length, `${name}: one decision row per artifact`);
          const norm = (d: { digest: string; tags: string[]; action: string; reason: string; rule: number | null; role: string; planned_action?: string | null }) =>
            JSON.stringify([d.digest, [...d.tags].sort(), d.action, d.reason, d.rule, d.role, d.planned_action ?? null]);
          assert.deepEqual(mine.map(norm).sort(), expected.decisions.map(norm).sort(), `${name}: the database path decides as the pure evaluator on the same data`);
          seen.rows += mine.length;
          seen.deletes += mine.filter((r) => r.action === "delete").length;
          if (expected.outcome === "aborted") seen.aborted++;
          if (expected.outcome === "aborted") assert.match(task.error ?? "", /^aborted: /, `${name}: an aborted repository fails its task`);
          else assert.equal(task.error, null, `${name}: ${task.error}`);
          assert.ok(mine.every((r) => r.outcome === (r.action === "delete" || r.action === "untag" ? "dry_run" : "none")), `${name}: dry run, no registry call pending`);
          if (policy.deletion_unit === "artifact") {
            for (const rule of enabled.filter((r) => ruleSelectsRepo(r, name))) {
              for (const digest of referenceRetained(rule, candidates, NOW)) {
                const d = mine.find((r) => r.digest === digest)!;
                assert.notEqual(d.action, "delete", `${name}@${digest} is retained by ${rule.template} ${JSON.stringify(rule.params)} but got a delete decision`);
              }
            }
          }
        }
        assert.equal(rows.filter((r) => !NAMES.includes(r.repository)).length, 0);
      }
    }),
    { numRuns: 60 },
  );
  t.diagnostic(`decision rows ${seen.rows}, delete decisions ${seen.deletes}, repositories untouched ${seen.untouched}, aborted ${seen.aborted}`);
  assert.ok(seen.deletes > 0 && seen.untouched > 0, "the random cases exercised both deletions and untouched repositories");
});
