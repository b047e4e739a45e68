// Read-only views of execution history for operators: `ebb executions list|show`, `ebb run
// --wait`'s summary and the JSON API (/api/executions...) return these very objects, so the
// CLI's --json and the API agree. Nothing here returns registry credentials: registries are
// only ever read for their name.
import type pg from "pg";

type Queryable = Pick<pg.Pool | pg.PoolClient, "query">;

export const EXECUTION_STATUSES = ["pending", "running", "success", "error", "stopped"] as const;
export type ExecutionStatusName = (typeof EXECUTION_STATUSES)[number];
export const DECISION_ACTIONS = ["retain", "protected", "delete", "untag", "error"] as const;
export type DecisionAction = (typeof DECISION_ACTIONS)[number];
export const DECISION_OUTCOMES = ["none", "dry_run", "pending", "deleted", "already_deleted", "failed", "unsupported", "skipped"] as const;

/** One row of execution history with live task counts (ebb.execution_summary). */
export interface ExecutionItem {
  id: number;
  kind: string;
  target_id: number;
  /** the policy name (retention) or registry name (sync); null when it was deleted since */
  target_name: string | null;
  schedule_id: number | null;
  trigger: "schedule" | "manual" | "event";
  status: ExecutionStatusName;
  dry_run: boolean;
  stop_requested: boolean;
  /** false while the plan job has not yet created every task */
  planned: boolean;
  fire_time: Date;
  created_at: Date;
  started_at: Date | null;
  ended_at: Date | null;
  duration_seconds: number | null;
  error: string | null;
  tasks: number;
  open_tasks: number;
  tasks_succeeded: number;
  tasks_failed: number;
  tasks_stopped: number;
  total: number;
  retained: number;
  deleted: number;
  errors: number;
}

// execution_summary joined back to executions for the columns the view leaves out, and the
// target's name: policies primary key / registries primary key.
const ITEM_SELECT = `
  select s.id, s.kind, s.target_id,
         case s.kind when 'retention' then (select p.name from ebb.policies p where p.id = s.target_id)
                     when 'sync' then (select r.name from ebb.registries r where r.id = s.target_id) end as target_name,
         s.schedule_id, s.trigger, s.status, s.dry_run, s.stop_requested, e.planned,
         s.fire_time, e.created_at, s.started_at, s.ended_at,
         extract(epoch from coalesce(s.ended_at, case when s.started_at is not null then now() end) - s.started_at)::float8 as duration_seconds,
         s.error, s.tasks::int, s.open_tasks::int, s.tasks_succeeded::int, s.tasks_failed::int, s.tasks_stopped::int,
         s.total::int8, s.retained::int8, s.deleted::int8, s.errors::int8
    from ebb.execution_summary s
    join ebb.executions e on e.id = s.id`;

export interface ListExecutionsOptions {
  limit: number;
  kind?: string;
  targetId?: number;
  status?: ExecutionStatusName;
  /** keyset paging: executions with a smaller id only */
  beforeId?: number;
}

/** Newest first. With kind + target: executions_history_idx; otherwise the primary key backwards. */
export async function listExecutions(db: Queryable, opts: ListExecutionsOptions): Promise<ExecutionItem[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    where.push(sql.replace("?", `$${params.length}`));
  };
  if (opts.kind !== undefined) add("s.kind = ?", opts.kind);
  if (opts.targetId !== undefined) add("s.target_id = ?", opts.targetId);
  if (opts.status !== undefined) add("s.status = ?", opts.status);
  if (opts.beforeId !== undefined) add("s.id < ?", opts.beforeId);
  params.push(opts.limit);
  const { rows } = await db.query<ExecutionItem>(
    `${ITEM_SELECT} ${where.length ? `where ${where.join(" and ")}` : ""} order by s.id desc limit $${params.length}`,
    params,
  );
  return rows;
}

export async function readExecution(db: Queryable, id: number): Promise<ExecutionItem | undefined> {
  const { rows } = await db.query<ExecutionItem>(`${ITEM_SELECT} where s.id = $1`, [id]);
  return rows[0];
}

export interface TaskItem {
  id: number;
  key: string;
  status: ExecutionStatusName;
  attempts: number;
  started_at: Date | null;
  ended_at: Date | null;
  error: string | null;
  total: number;
  retained: number;
  deleted: number;
  errors: number;
  details: Record<string, unknown> | null;
}

export interface DecisionCount {
  action: DecisionAction;
  outcome: string;
  count: number;
}

export interface ExecutionDetail {
  execution: ExecutionItem;
  /** tasks of the execution by status (all of them, whatever task_limit) */
  task_counts: Record<ExecutionStatusName, number>;
  /** failed, running and stopped tasks first, then the rest; at most task_limit */
  tasks: TaskItem[];
  task_limit: number;
  /** retention decisions by action and outcome (empty for other kinds) */
  decisions: DecisionCount[];
  /** the policy as this execution applied it (retention only) */
  retention: { policy_id: number; policy_name: string; dry_run: boolean; evaluated_at: Date } | null;
}

export async function readExecutionDetail(db: Queryable, id: number, opts: { taskLimit: number }): Promise<ExecutionDetail | undefined> {
  const execution = await readExecution(db, id);
  if (!execution) return undefined;
  // tasks (execution_id, key) unique index: every task of this execution, sorted in memory
  const { rows: tasks } = await db.query<TaskItem>(
    `select id, key, status, attempts, started_at, ended_at, error, total, retained, deleted, errors, details
       from ebb.tasks where execution_id = $1
      order by case status when 'error' then 0 when 'running' then 1 when 'stopped' then 2 when 'pending' then 3 else 4 end, id
      limit $2`,
    [id, opts.taskLimit],
  );
  const { rows: counts } = await db.query<{ status: ExecutionStatusName; count: number }>(
    "select status, count(*)::int as count from ebb.tasks where execution_id = $1 group by status",
    [id],
  );
  const task_counts = Object.fromEntries(EXECUTION_STATUSES.map((s) => [s, 0])) as Record<ExecutionStatusName, number>;
  for (const c of counts) task_counts[c.status] = c.count;
  // decisions_execution_action_idx (execution_id, action, outcome): an index-only count
  const { rows: decisions } = await db.query<DecisionCount>(
    `select action, outcome, count(*)::int8 as count from ebb.decisions where execution_id = $1
      group by action, outcome order by action, outcome`,
    [id],
  );
  // retention_runs primary key
  const { rows: runs } = await db.query<{ policy_id: number; policy_name: string; dry_run: boolean; evaluated_at: Date }>(
    "select policy_id, policy_name, dry_run, evaluated_at from ebb.retention_runs where execution_id = $1",
    [id],
  );
  return { execution, task_counts, tasks, task_limit: opts.taskLimit, decisions, retention: runs[0] ?? null };
}

export interface DecisionItem {
  id: number;
  task_id: number;
  repository: string;
  digest: string;
  tags: string[];
  media_type: string | null;
  action: DecisionAction;
  planned_action: string | null;
  untag_tags: string[] | null;
  reason: string;
  rule: number | null;
  role: string;
  pushed_at: Date | null;
  pulled_at: Date | null;
  outcome: string;
  error: string | null;
  decided_at: Date;
  acted_at: Date | null;
}

export interface ListDecisionsOptions {
  limit: number;
  action?: DecisionAction;
  outcome?: string;
  /** keyset paging: decisions with a larger id only */
  afterId?: number;
}

/**
 * Decisions of one execution in id order. decisions_execution_action_idx narrows by
 * execution (and action/outcome when given).
 */
export async function listDecisions(db: Queryable, executionId: number, opts: ListDecisionsOptions): Promise<DecisionItem[]> {
  const params: unknown[] = [executionId];
  const where = ["execution_id = $1"];
  if (opts.action !== undefined) where.push(`action = $${params.push(opts.action)}`);
  if (opts.outcome !== undefined) where.push(`outcome = $${params.push(opts.outcome)}`);
  if (opts.afterId !== undefined) where.push(`id > $${params.push(opts.afterId)}`);
  const { rows } = await db.query<DecisionItem>(
    `select id, task_id, repository, digest, tags, media_type, action, planned_action, untag_tags, reason, rule, role,
            pushed_at, pulled_at, outcome, error, decided_at, acted_at
       from ebb.decisions where ${where.join(" and ")}
      order by id limit $${params.push(opts.limit)}`,
    params,
  );
  return rows;
}

/** A retention policy by name, or by id when the text is a number and no policy has that name. */
export async function findPolicy(db: Queryable, nameOrId: string): Promise<{ id: number; name: string; enabled: boolean; dry_run: boolean } | undefined> {
  // policies name unique / primary key
  const { rows } = await db.query<{ id: number; name: string; enabled: boolean; dry_run: boolean }>(
    `select id, name, enabled, dry_run from ebb.policies
      where name = $1 or ($2::bigint is not null and id = $2::bigint)
      order by (name = $1) desc limit 1`,
    [nameOrId, /^\d{1,15}$/.test(nameOrId) ? nameOrId : null],
  );
  return rows[0];
}

/** A registry by name or id: its id and name only (never its credentials_ref). */
export async function findRegistry(db: Queryable, nameOrId: string): Promise<{ id: number; name: string } | undefined> {
  // registries name unique / primary key
  const { rows } = await db.query<{ id: number; name: string }>(
    `select id, name from ebb.registries
      where name = $1 or ($2::bigint is not null and id = $2::bigint)
      order by (name = $1) desc limit 1`,
    [nameOrId, /^\d{1,15}$/.test(nameOrId) ? nameOrId : null],
  );
  return rows[0];
}
