// One retention task = one repository of one execution, as one path:
//   read (one snapshot, one set-based query) -> refuse STALE -> evaluate (pure) ->
//   write every decision (one batched insert) -> abort/error: fail, delete nothing ->
//   dry run: stop here -> delete the pending ones (deletion.ts) -> counts from the rows.
//
// Idempotent: decisions are unique per (execution, repository, digest). A task re-run after a
// crash or a retry finds its rows and does not evaluate again: it makes the registry calls
// still 'pending' (a manifest deleted just before the crash answers 404: already_deleted).
import type pg from "pg";
import type { BookkeepingOptions } from "../db/bookkeeping_statement.js";
import { PermanentTaskError, type TaskControl } from "../executions/kind.js";
import type { DeleteOutcome } from "../registry/client.js";
import { readRepositoryCandidates } from "./candidates_query.js";
import { countNewDecisions, countTaskDecisions, hasDecisions, insertDecisions, pendingCalls, type TaskDecisionCounts } from "./decisions_store.js";
import { executeDeletions } from "./deletion.js";
import { evaluateRepository } from "./evaluate_repository.js";
import type { RetentionRun } from "./retention_run.js";

export interface RepositoryTaskDeps {
  pool: pg.Pool;
  run: RetentionRun;
  taskId: number;
  repositoryId: number;
  /** the repository's name (the task key) */
  repositoryName: string;
  /** 1 on the task's first run: no earlier attempt can have written decisions */
  attempt: number;
  control: Pick<TaskControl, "checkpoint" | "log" | "counts" | "details">;
  /** called only when there is something to delete; the caller closes what it opened */
  openRegistry: () => Promise<{ deleteManifest(repository: string, digest: string): Promise<DeleteOutcome> }>;
  /** registry calls in flight at once */
  deleteConcurrency: number;
  /** the worker's bookkeeping settings: prepared reads; a dry run's decisions committed asynchronously */
  bookkeeping: BookkeepingOptions;
}

async function earlierVerdict(pool: pg.Pool, taskId: number): Promise<string | null> {
  const { rows } = await pool.query<{ reason: string }>(
    `select reason from ebb.decisions where task_id = $1 and (planned_action is not null or action = 'error') limit 1`,
    [taskId],
  );
  return rows[0]?.reason ?? null;
}

async function saveCounts(deps: RepositoryTaskDeps): Promise<{ failed: number; unsupported: number; total: number }> {
  const c = await countTaskDecisions(deps.pool, deps.run.executionId, deps.repositoryId);
  setCounts(deps, c);
  return c;
}

function setCounts(deps: RepositoryTaskDeps, c: TaskDecisionCounts): void {
  deps.control.counts.total = c.total;
  deps.control.counts.retained = c.retained;
  deps.control.counts.deleted = c.deleted;
  deps.control.counts.errors = c.errors;
  if (c.unsupported > 0) deps.control.details["untag_unsupported"] = c.unsupported;
  if (c.failed > 0) deps.control.details["failed_deletions"] = c.failed;
  if (c.pending > 0) deps.control.details["pending"] = c.pending;
}

export async function runRepositoryTask(deps: RepositoryTaskDeps): Promise<void> {
  const { pool, run, control } = deps;
  control.details["dry_run"] = run.dryRun;
  control.details["repository"] = deps.repositoryName;
  if (deps.attempt > 1 && (await hasDecisions(pool, run.executionId, deps.repositoryId))) {
    control.log("info", "decisions already written by an earlier attempt: resuming their registry calls");
    const verdict = await earlierVerdict(pool, deps.taskId);
    if (verdict !== null) {
      await saveCounts(deps);
      throw new PermanentTaskError(verdict);
    }
  } else {
    const read = await readRepositoryCandidates(pool, deps.repositoryId, deps.bookkeeping.prepared);
    const repo = read.repository;
    if (!repo || repo.deleted_at !== null) {
      control.details["outcome"] = "gone";
      control.log("info", `repository ${deps.repositoryId} is no longer in the catalog: nothing to do`);
      return;
    }
    if (repo.stale) {
      const reason = `repository ${repo.name} is STALE (${repo.stale_reason ?? "no reason recorded"}): nothing decided, nothing deleted; a successful sync clears it`;
      control.details["outcome"] = "stale";
      throw new PermanentTaskError(reason);
    }
    if (repo.uninspected > 0) {
      // Known only from push events: a signature or SBOM would look like a plain untagged
      // artifact and an index's children would be unknown. Same snapshot as the read above.
      const reason = `repository ${repo.name} holds ${repo.uninspected} artifact(s) whose manifests ebb has not read yet (known only from push events: referrers and index children unknown): nothing decided, nothing deleted; a sync reads them (ebb sync <registry> ${repo.name})`;
      control.details["outcome"] = "uninspected";
      throw new PermanentTaskError(reason);
    }
    const evaluation = evaluateRepository(run.compiled, repo.name, read.candidates, run.evaluatedAt);
    control.details["outcome"] = evaluation.outcome;
    if (evaluation.reason) control.details["reason"] = evaluation.reason;
    const mediaTypes = new Map(read.candidates.map((c) => [c.digest, c.media_type]));
    const inserted = await insertDecisions(pool, {
      executionId: run.executionId, taskId: deps.taskId, repositoryId: deps.repositoryId,
      rulePositions: run.rulePositions, dryRun: run.dryRun, mediaTypes, asyncCommit: deps.bookkeeping.asyncCommit, firstAttempt: deps.attempt === 1,
    }, evaluation.decisions);
    control.log("info", `${repo.name}: ${evaluation.outcome}, ${evaluation.counts.total} artifacts, ${evaluation.counts.deleted} to delete, ${evaluation.counts.untagged} to untag${run.dryRun ? " (dry run)" : ""}`);
    if (evaluation.outcome === "aborted" || evaluation.outcome === "error") {
      await saveCounts(deps);
      throw new PermanentTaskError(`${evaluation.outcome === "aborted" ? "aborted" : "error"}: ${evaluation.reason ?? "unknown"}; nothing deleted`);
    }
    if (run.dryRun && inserted === evaluation.decisions.length) {
      // every row is this run's own (none left by an earlier attempt): count them here, by
      // the same rules as countTaskDecisions, without reading them back
      setCounts(deps, countNewDecisions(evaluation.decisions, run.dryRun));
      return;
    }
  }

  if (run.dryRun) {
    await saveCounts(deps);
    return;
  }
  const calls = await pendingCalls(pool, deps.taskId);
  try {
    if (calls.length > 0) {
      await executeDeletions({
        pool, registry: await deps.openRegistry(), repository: deps.repositoryName,
        concurrency: deps.deleteConcurrency, checkpoint: () => control.checkpoint(), log: (l, m) => control.log(l, m),
      }, calls);
    }
  } finally {
    // whatever happened (stop, database error), the counts say what was done
    await saveCounts(deps).catch(() => {});
  }
  const c = await saveCounts(deps);
  if (c.failed > 0) {
    throw new PermanentTaskError(`${c.failed} deletion(s) failed (see ebb.decisions outcome 'failed'); the others went on`);
  }
}
