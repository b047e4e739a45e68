// The 'retention' execution kind: target_id = ebb.policies.id.
//   planTasks: snapshot the policy (retention_run.ts), then the policy registry's repositories
//              (not deleted) that are in scope and selected by at least one enabled rule, in
//              batches, one task each (key = repository name; group = the registry, so at most
//              taskGroupConcurrency repositories of one registry are read and deleted from at
//              once; a dry run on the catalog (dry_run_reads = 'catalog') makes no registry
//              call, so its tasks have no group and run at the workers' full concurrency).
//              Repositories no rule selects get no task: they are never touched.
//   runTask:   repository_task.ts.
import type pg from "pg";
import { bookkeepingOptions } from "../db/bookkeeping_statement.js";
import type { ExecutionKind, TaskSpec } from "../executions/kind.js";
import { PermanentTaskError } from "../executions/kind.js";
import { createRegistryClient, readRegistryRecord, RegistryConfigError } from "../registry/client_factory.js";
import type { RegistryClient } from "../registry/client.js";
import { scopeOf } from "./compiled_policy.js";
import { literalProjects, projectLikePattern } from "./literal_projects.js";
import { runRepositoryTask } from "./repository_task.js";
import { ensureRetentionRun, loadRetentionRun } from "./retention_run.js";

export interface RetentionKindOptions {
  /** repositories per planning batch (default 500) */
  batchSize?: number;
  /** registry DELETE calls in flight at once per repository task (default 4) */
  deleteConcurrency?: number;
  /** registry requests in flight at once per repository task: the fresh read's HEADs and GETs (default 8) */
  readConcurrency?: number;
  /** environment holding credentials named by registries.credentials_ref (default process.env) */
  env?: NodeJS.ProcessEnv;
}

async function* repositoryPages(
  pool: pg.Pool,
  registryId: number,
  batch: number,
  projects: string[] | null,
): AsyncGenerator<{ id: number; name: string }[]> {
  const likes = projects?.map(projectLikePattern) ?? null;
  let after = "";
  for (;;) {
    // keyset pages in name order: repositories (registry_id, name) unique; a policy scoped to
    // literal projects reads only their repositories ("team/%", found by
    // repositories_project_idx; one project: read in index order, no sort),
    // not the whole registry
    const { rows } = await pool.query<{ id: number; name: string }>(
      projects
        ? `select id, name from ebb.repositories
            where registry_id = $1 and split_part(name, '/', 1) ${projects.length === 1 ? "= ($4::text[])[1]" : "= any ($4::text[])"}
              and name like any ($5::text[])
              and deleted_at is null and name > $2
            order by name limit $3`
        : `select id, name from ebb.repositories
            where registry_id = $1 and deleted_at is null and name > $2
            order by name limit $3`,
      projects ? [registryId, after, batch, projects, likes] : [registryId, after, batch],
    );
    if (rows.length === 0) return;
    yield rows;
    after = rows[rows.length - 1]!.name;
    if (rows.length < batch) return;
  }
}

export function retentionKind(opts: RetentionKindOptions = {}): ExecutionKind {
  const batchSize = opts.batchSize ?? 500;
  const deleteConcurrency = opts.deleteConcurrency ?? 4;
  return {
    name: "retention",
    async *planTasks(ctx, execution) {
      const run = await ensureRetentionRun(ctx.pool, execution, { asyncCommit: ctx.config.workerAsyncCommit });
      // the per-registry limit protects the registry: every run that reads it is limited
      const readsRegistry = !(run.dryRun && run.dryRunReads === "catalog");
      const group = readsRegistry ? { group: `registry:${run.registryId}` } : {};
      for await (const page of repositoryPages(ctx.pool, run.registryId, batchSize, literalProjects(run.policy))) {
        const batch: TaskSpec[] = [];
        for (const repo of page) {
          const scope = scopeOf(run.compiled, repo.name);
          if (!scope.inScope || scope.rules.length === 0) continue;
          batch.push({ key: repo.name, ...group, payload: { repositoryId: repo.id } });
        }
        if (batch.length > 0) yield batch;
      }
    },
    async runTask(ctx, task, control) {
      const run = await loadRetentionRun(ctx.pool, task.executionId);
      const repositoryId = Number(task.payload["repositoryId"]);
      if (!Number.isSafeInteger(repositoryId)) throw new PermanentTaskError(`task ${task.id} has no repositoryId in its payload`);
      let client: RegistryClient | undefined;
      try {
        await runRepositoryTask({
          pool: ctx.pool, run, taskId: task.id, repositoryId, repositoryName: task.key, attempt: task.attempt, control, deleteConcurrency,
          bookkeeping: bookkeepingOptions(ctx.config),
          openRegistry: async () => {
            const record = await readRegistryRecord(ctx.pool, run.registryId);
            if (!record) throw new PermanentTaskError(`registry ${run.registryId} does not exist`);
            try {
              client = createRegistryClient(record, { env: opts.env, concurrency: opts.readConcurrency, logger: ctx.logger.child({ component: "registry", registry: record.name }) });
            } catch (err) {
              if (err instanceof RegistryConfigError) throw new PermanentTaskError(err.message);
              throw err;
            }
            return client;
          },
        });
      } finally {
        await client?.close().catch(() => {});
      }
    },
  };
}
