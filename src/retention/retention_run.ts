// The policy snapshot of one retention execution (ebb.retention_runs): written once when the
// execution is planned, read by every task of it, so all repositories of one execution are
// decided with the same rules and the same "now" even if the policy is edited meanwhile.
import type pg from "pg";
import { commitMode, setCommitMode, type BookkeepingOptions } from "../db/bookkeeping_statement.js";
import { PermanentTaskError, type Execution } from "../executions/kind.js";
import { compilePolicy, type CompiledPolicy } from "./compiled_policy.js";
import { PolicyValidationError } from "./policy_error.js";
import { parsePolicy, type Policy } from "./policy_schema.js";
import { readStoredPolicy } from "./policy_store.js";

export interface RetentionRun {
  executionId: number;
  policyId: number;
  policyName: string;
  registryId: number;
  policy: Policy;
  compiled: CompiledPolicy;
  rulePositions: number[];
  dryRun: boolean;
  /** where a dry run reads the repository: the registry (as a real run) or the catalog as it is */
  dryRunReads: "registry" | "catalog";
  evaluatedAt: Date;
}

interface RunRow {
  execution_id: number;
  policy_id: number;
  policy_name: string;
  registry_id: number;
  policy: unknown;
  rule_positions: number[];
  dry_run: boolean;
  dry_run_reads: "registry" | "catalog";
  evaluated_at: Date;
}

function fromRow(row: RunRow): RetentionRun {
  let policy: Policy;
  try {
    policy = parsePolicy(row.policy);
  } catch (err) {
    if (err instanceof PolicyValidationError) throw new PermanentTaskError(`policy ${row.policy_name}: ${err.message}`);
    throw err;
  }
  return {
    executionId: row.execution_id, policyId: row.policy_id, policyName: row.policy_name, registryId: row.registry_id,
    policy, compiled: compilePolicy(policy), rulePositions: row.rule_positions, dryRun: row.dry_run,
    dryRunReads: row.dry_run_reads, evaluatedAt: row.evaluated_at,
  };
}

const SELECT_RUN = `select execution_id, policy_id, policy_name, registry_id, policy, rule_positions, dry_run, dry_run_reads, evaluated_at
                      from ebb.retention_runs where execution_id = $1`;

/**
 * The run of a retention execution, created from the policy on first call (planning). A
 * missing or invalid policy is a PermanentTaskError: the execution fails, nothing is deleted.
 * Two statements: the policy with its rules, then the snapshot insert (or, when planning runs
 * again after a crash, the snapshot already there). The run is kept in the process cache for
 * the execution's tasks. asyncCommit: the insert is planning bookkeeping
 * (bookkeeping_statement.ts): a PostgreSQL crash that undoes it undoes the planning after it,
 * and the plan job runs again.
 */
export async function ensureRetentionRun(pool: pg.Pool, execution: Execution, opts: Pick<BookkeepingOptions, "asyncCommit"> = { asyncCommit: false }): Promise<RetentionRun> {
  const stored = await readStoredPolicy(pool, execution.targetId);
  if (!stored) {
    // deleted since: an earlier planning attempt may still have taken the snapshot
    const { rows } = await pool.query<RunRow>(SELECT_RUN, [execution.id]);
    if (rows[0]) return remember(fromRow(rows[0]));
    throw new PermanentTaskError(`policy ${execution.targetId} does not exist (deleted?)`);
  }
  try {
    parsePolicy(stored.json); // an invalid policy fails here: no snapshot, no task
  } catch (err) {
    if (err instanceof PolicyValidationError) throw new PermanentTaskError(`policy ${stored.row.name}: ${err.message}`);
    throw err;
  }
  const { rows } = await pool.query<RunRow>(
    `with ins as (
       insert into ebb.retention_runs (execution_id, policy_id, policy_name, registry_id, policy, rule_positions, dry_run,
                                       dry_run_reads, evaluated_at)
       values ($1, $2, $3, $4, $5, $6, $7, coalesce((select dry_run_reads from ebb.policies where id = $2), 'registry'), $8)
       on conflict (execution_id) do nothing
       returning execution_id, policy_id, policy_name, registry_id, policy, rule_positions, dry_run, dry_run_reads, evaluated_at)
     select ins.* from ins, (select ${setCommitMode("$9")}) as commit_mode
     union all
     select execution_id, policy_id, policy_name, registry_id, policy, rule_positions, dry_run, dry_run_reads, evaluated_at
       from ebb.retention_runs where execution_id = $1 and not exists (select 1 from ins)`,
    [execution.id, stored.row.id, stored.row.name, stored.row.registry_id, JSON.stringify(stored.json),
     stored.rulePositions, execution.dryRun || stored.row.dry_run, execution.fireTime, commitMode(opts)],
  );
  // (a concurrent planner's snapshot, committed after this statement began, is read again)
  const row = rows[0] ?? (await pool.query<RunRow>(SELECT_RUN, [execution.id])).rows[0]!;
  return remember(fromRow(row));
}

const cache = new Map<number, Promise<RetentionRun>>();
const CACHE_SIZE = 256;

/**
 * The run of an execution (cached per process: many tasks of one execution share it). Tasks
 * of one execution starting side by side share one read: the first one's, in flight.
 */
export function loadRetentionRun(pool: pg.Pool, executionId: number): Promise<RetentionRun> {
  const hit = cache.get(executionId);
  if (hit) return hit;
  const loading = pool.query<RunRow>(SELECT_RUN, [executionId]).then(({ rows }) => {
    if (!rows[0]) throw new PermanentTaskError(`execution ${executionId} has no retention run (it was not planned as a retention execution)`);
    return fromRow(rows[0]);
  });
  // a failed read is not kept: the next task reads again
  loading.catch(() => { if (cache.get(executionId) === loading) cache.delete(executionId); });
  keep(executionId, loading);
  return loading;
}

function remember(run: RetentionRun): RetentionRun {
  keep(run.executionId, Promise.resolve(run));
  return run;
}

function keep(executionId: number, run: Promise<RetentionRun>): void {
  if (!cache.has(executionId) && cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
  cache.set(executionId, run);
}
