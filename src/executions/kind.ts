import type { AppContext } from "../service/context.js";

/** One execution as a kind sees it. */
export interface Execution {
  id: number;
  kind: string;
  /** the policy id (retention) or registry id (sync) */
  targetId: number;
  scheduleId: number | null;
  /** the nominal cron slot for scheduled runs, the request time otherwise */
  fireTime: Date;
  trigger: "schedule" | "manual" | "event";
  dryRun: boolean;
}

/** An execution's columns as statements return them (ebb.executions, snake case). */
export interface ExecutionColumns {
  kind: string;
  target_id: number;
  schedule_id: number | null;
  fire_time: Date;
  trigger: Execution["trigger"];
  dry_run: boolean;
}

/** The Execution of execution `id` from its columns. */
export function executionFromColumns(id: number, c: ExecutionColumns): Execution {
  return { id, kind: c.kind, targetId: c.target_id, scheduleId: c.schedule_id, fireTime: c.fire_time, trigger: c.trigger, dryRun: c.dry_run };
}

/** A unit of work to create, planned by ExecutionKind.planTasks. */
export interface TaskSpec {
  /** unique within the execution, e.g. the repository name; re-planning skips known keys */
  key: string;
  /**
   * Concurrency group, e.g. `registry:3`: at most `taskGroupConcurrency` tasks of one group
   * (per kind) run at once across all ebb processes. Omit for no per-group limit.
   */
  group?: string;
  payload?: Record<string, unknown>;
}

export interface Task {
  id: number;
  executionId: number;
  key: string;
  group: string | null;
  payload: Record<string, unknown>;
  /** 1 on the first run of this task, 2 after a retry or a crash recovery, ... */
  attempt: number;
}

/** Harbor's counters of a task; the execution's are their sums. */
export interface TaskCounts {
  total: number;
  retained: number;
  deleted: number;
  errors: number;
}

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface TaskControl {
  execution: Execution;
  /**
   * Throws StopRequested when a stop was requested for the execution (ebb stop, or UPDATE
   * ebb.executions SET stop_requested = true) or the worker shuts down. Cheap: the database
   * is asked at most once per stop-check interval. Call it between units of work (e.g.
   * between two deletions).
   */
  checkpoint(): Promise<void>;
  /** Aborts on stop request (seen by a checkpoint) or worker shutdown: pass it to fetch(). */
  signal: AbortSignal;
  /** A task log line, stored in ebb.task_logs (written in batches; capped per attempt). */
  log(level: LogLevel, message: string): void;
  /**
   * The task's counters so far. Mutate them as work progresses: they are saved whatever
   * the outcome (success, error, stop).
   */
  counts: TaskCounts;
  /** Kind-specific details saved with the task (jsonb), e.g. the reason of an abort. */
  details: Record<string, unknown>;
}

/**
 * A kind of execution (retention, sync, ...). ebb's framework does the rest: scheduling,
 * task rows, jobs, concurrency, retries, stop, crash recovery, status and history.
 */
export interface ExecutionKind {
  /** must exist in ebb.execution_kinds (retention and sync are seeded by the schema) */
  name: string;
  /**
   * The tasks of an execution, in batches (e.g. 500 repositories at a time). Each batch is
   * inserted with its jobs in one transaction. Must be deterministic in its keys: after a
   * crash planning runs again and keys already created are skipped. Throw
   * PermanentTaskError to fail the execution without retrying the planning.
   */
  planTasks(ctx: AppContext, execution: Execution): AsyncIterable<TaskSpec[]>;
  /**
   * Run one task. Return normally = success. Throw PermanentTaskError for a failure that a
   * retry cannot fix (the task fails with its message); any other error is transient and
   * retried with exponential backoff up to maxAttempts; StopRequested (from checkpoint())
   * ends the task as stopped. A task may run again after a crash: make it idempotent.
   */
  runTask(ctx: AppContext, task: Task, control: TaskControl): Promise<void>;
  /** attempts per task, transient failures included (default 5) */
  maxAttempts?: number;
}

/** A failure a retry cannot fix: the task (or planning) fails at once with this message. */
export class PermanentTaskError extends Error {
  override name = "PermanentTaskError";
}

/** Thrown by TaskControl.checkpoint() when the execution must stop. */
export class StopRequested extends Error {
  override name = "StopRequested";
  constructor(readonly reason: "stop requested" | "worker shutting down") {
    super(reason);
  }
}

export type KindMap = ReadonlyMap<string, ExecutionKind>;
