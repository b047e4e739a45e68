// ebb.decisions: written once per artifact per execution in ONE batched insert per task,
// then updated one row per registry call with what the registry said.
import type pg from "pg";
import { commitMode, setCommitMode } from "../db/bookkeeping_statement.js";
import type { Decision } from "./decision.js";

export type DecisionOutcome = "none" | "dry_run" | "pending" | "deleted" | "already_deleted" | "failed" | "unsupported" | "skipped";

export interface DecisionWrite {
  executionId: number;
  taskId: number;
  repositoryId: number;
  /** policy_rules.position of policy.rules[i] */
  rulePositions: readonly number[];
  dryRun: boolean;
  mediaTypes: ReadonlyMap<string, string | null | undefined>;
  /**
   * Commit without waiting for the WAL flush (bookkeeping_statement.ts). Only for a dry run:
   * its rows are a report, and a PostgreSQL crash that undoes them undoes the task's end too
   * (a WAL suffix), so the task writes them again. Decisions of a run that deletes are on disk
   * before the first registry call.
   */
  asyncCommit: boolean;
  /**
   * The task's first attempt: no row of it can exist yet, so the rows are inserted without
   * ON CONFLICT (its speculative insertion cost ~20% of the insert). Should one exist after
   * all, the unique key refuses the insert and the task is retried as a later attempt.
   */
  firstAttempt: boolean;
}

/** What a decision leads to before any registry call. */
export function initialOutcome(d: Decision, dryRun: boolean): DecisionOutcome {
  if (d.action !== "delete" && d.action !== "untag") return "none";
  return dryRun ? "dry_run" : "pending";
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/**
 * Insert every decision of a task in one statement. Rows already there (a re-run after a
 * crash: decisions (execution_id, repository_id, digest) unique) are left as they are.
 * Returns the rows inserted.
 */
export async function insertDecisions(pool: pg.Pool, w: DecisionWrite, decisions: readonly Decision[]): Promise<number> {
  if (decisions.length === 0) return 0;
  const { rowCount } = await pool.query(
    `insert into ebb.decisions (execution_id, task_id, repository_id, repository, digest, tags, media_type, action,
                                planned_action, untag_tags, reason, rule, role, pushed_at, pulled_at, outcome)
     select $1, $2, $3, d.repository, d.digest, d.tags, d.media_type, d.action,
            d.planned_action, d.untag_tags, d.reason, d.rule, d.role, d.pushed_at, d.pulled_at, d.outcome
       from jsonb_to_recordset($4::jsonb) as d(repository text, digest text, tags text[], media_type text, action text,
            planned_action text, untag_tags text[], reason text, rule smallint, role text, pushed_at timestamptz,
            pulled_at timestamptz, outcome text),
            (select ${setCommitMode("$5")}) as commit_mode
     ${w.firstAttempt ? "" : "on conflict (execution_id, repository_id, digest) do nothing"}`,
    [
      w.executionId, w.taskId, w.repositoryId,
      JSON.stringify(decisions.map((d) => ({
        repository: d.repository,
        digest: d.digest,
        tags: d.tags,
        media_type: w.mediaTypes.get(d.digest) ?? null,
        action: d.action,
        planned_action: d.planned_action ?? null,
        untag_tags: d.untag_tags ?? null,
        reason: d.reason,
        rule: d.rule === null ? null : (w.rulePositions[d.rule] ?? d.rule),
        role: d.role,
        pushed_at: isoOrNull(d.pushed_at),
        pulled_at: isoOrNull(d.pulled_at),
        outcome: initialOutcome(d, w.dryRun),
      }))),
      commitMode({ asyncCommit: w.asyncCommit && w.dryRun }),
    ],
  );
  return rowCount ?? 0;
}

export interface PendingCall {
  id: number;
  digest: string;
  action: "delete" | "untag";
  role: "candidate" | "index_child" | "referrer";
  /** an index (has children in the decision's repository) */
  is_index: boolean;
  untag_tags: string[] | null;
}

/** The registry calls a task still has to make (decisions_task_pending_idx). */
export async function pendingCalls(pool: pg.Pool, taskId: number): Promise<PendingCall[]> {
  const { rows } = await pool.query<PendingCall>(
    `select d.id, d.digest, d.action, d.role, d.untag_tags,
            exists (select 1 from ebb.artifact_references x
                     where x.repository_id = d.repository_id and x.digest = d.digest and x.kind = 'index_child') as is_index
       from ebb.decisions d where d.task_id = $1 and d.outcome = 'pending'
      order by d.digest`,
    [taskId],
  );
  return rows;
}

/** Does this task already have decision rows (a re-run after a crash or a retry)? */
export async function hasDecisions(pool: pg.Pool, executionId: number, repositoryId: number): Promise<boolean> {
  // decisions (execution_id, repository_id, digest) unique
  const { rowCount } = await pool.query(
    "select 1 from ebb.decisions where execution_id = $1 and repository_id = $2 limit 1",
    [executionId, repositoryId],
  );
  return (rowCount ?? 0) > 0;
}

/**
 * Record the registry's answer on the decision; for a manifest that is gone (deleted now or
 * before) remove it from the catalog in the same statement (tags and references cascade).
 */
export async function recordOutcome(
  pool: pg.Pool, decisionId: number, outcome: "deleted" | "already_deleted" | "failed" | "unsupported", error: string | null,
): Promise<void> {
  await pool.query(
    `with d as (
       update ebb.decisions set outcome = $2, error = $3, acted_at = now()
        where id = $1 and outcome = 'pending'
       returning repository_id, digest)
     delete from ebb.artifacts a using d
      where $2 in ('deleted', 'already_deleted') and a.repository_id = d.repository_id and a.digest = d.digest`,
    [decisionId, outcome, error],
  );
}

/**
 * The tags of the repository as the task's decisions saw them: tag -> digest
 * (decisions_task_pending_idx does not cover this: one scan of the task's rows through
 * the unique (execution_id, repository_id, digest) index).
 */
export async function decidedTags(pool: pg.Pool, executionId: number, repositoryId: number): Promise<Map<string, string>> {
  const { rows } = await pool.query<{ tag: string; digest: string }>(
    `select t.tag, d.digest from ebb.decisions d, unnest(d.tags) as t(tag)
      where d.execution_id = $1 and d.repository_id = $2`,
    [executionId, repositoryId],
  );
  return new Map(rows.map((r) => [r.tag, r.digest]));
}

/** Deletions not made because the repository changed since the decision: outcome 'skipped', reason in error. */
export async function recordSkipped(pool: pg.Pool, skipped: ReadonlyArray<{ id: number; reason: string }>): Promise<void> {
  if (skipped.length === 0) return;
  await pool.query(
    `update ebb.decisions d set outcome = 'skipped', error = u.reason, acted_at = now()
       from unnest($1::bigint[], $2::text[]) as u(id, reason)
      where d.id = u.id and d.outcome = 'pending'`,
    [skipped.map((s) => s.id), skipped.map((s) => s.reason)],
  );
}

export interface TaskDecisionCounts {
  total: number;
  retained: number;
  deleted: number;
  errors: number;
  dry_run: number;
  pending: number;
  unsupported: number;
  failed: number;
  /** deletions skipped because the repository changed since the decision (the manifest stays) */
  skipped: number;
}

/**
 * Counts of a task from its decision rows (so a re-run counts the same): retained = retain,
 * protected, untag and skipped deletions (the manifest stays); deleted = deleted or already gone (in a dry run:
 * would be deleted, as Harbor counts a dry run);
 * errors = failed registry calls and undecidable artifacts.
 * A task is one repository of one execution: read through decisions' unique index
 * (execution_id, repository_id, digest).
 */
export async function countTaskDecisions(pool: pg.Pool, executionId: number, repositoryId: number): Promise<TaskDecisionCounts> {
  const { rows } = await pool.query<TaskDecisionCounts>(
    `select count(*)::int as total,
            count(*) filter (where action in ('retain', 'protected', 'untag') or outcome = 'skipped')::int as retained,
            count(*) filter (where action = 'delete' and outcome in ('deleted', 'already_deleted', 'dry_run'))::int as deleted,
            count(*) filter (where outcome = 'failed' or action = 'error')::int as errors,
            count(*) filter (where outcome = 'dry_run')::int as dry_run,
            count(*) filter (where outcome = 'pending')::int as pending,
            count(*) filter (where outcome = 'unsupported')::int as unsupported,
            count(*) filter (where outcome = 'failed')::int as failed,
            count(*) filter (where outcome = 'skipped')::int as skipped
       from ebb.decisions where execution_id = $1 and repository_id = $2`,
    [executionId, repositoryId],
  );
  return rows[0]!;
}

/**
 * countTaskDecisions for decisions just inserted (before any registry call), from memory:
 * the same rules applied to the rows as insertDecisions writes them (initialOutcome).
 */
export function countNewDecisions(decisions: readonly Decision[], dryRun: boolean): TaskDecisionCounts {
  const c: TaskDecisionCounts = { total: 0, retained: 0, deleted: 0, errors: 0, dry_run: 0, pending: 0, unsupported: 0, failed: 0, skipped: 0 };
  for (const d of decisions) {
    const outcome = initialOutcome(d, dryRun);
    c.total++;
    if (d.action === "retain" || d.action === "protected" || d.action === "untag") c.retained++;
    if (d.action === "delete" && outcome === "dry_run") c.deleted++;
    if (d.action === "error") c.errors++;
    if (outcome === "dry_run") c.dry_run++;
    if (outcome === "pending") c.pending++;
  }
  return c;
}
