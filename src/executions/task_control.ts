import type pg from "pg";
import type { Logger } from "../log/logger.js";
import { StopRequested, type Execution, type LogLevel, type TaskControl, type TaskCounts } from "./kind.js";
import { stopSignalsOf, type StopSignals } from "./stop.js";

/** Log lines kept per task attempt; one more line says how many were dropped. */
export const MAX_LOG_LINES_PER_ATTEMPT = 1000;
const LOG_FLUSH_LINES = 100;
const LOG_FLUSH_MS = 500;

/**
 * The TaskControl handed to ExecutionKind.runTask: a stop check and a buffered log writer
 * (one INSERT per batch of lines, not one per line) that also writes each line to the process
 * log with the execution, task and key (e.g. repository) as context.
 *
 * Stop: `signal` aborts the moment this process hears the execution's "ebb:stop"
 * notification (StopSignals, on the worker's LISTEN connection), so a caller can check it
 * right before each irreversible call without a statement. That is complete only while the
 * LISTEN was confirmed before this task last read stop_requested (its claim, or a check
 * here): otherwise (no LISTEN yet, a connection lost and listening again, transaction pooling)
 * checkpoint() asks the database - at once when a LISTEN is up but younger than that read,
 * else every stop-check interval. The periodic check also runs with a LISTEN, as a fallback.
 */
export class TaskControlImpl implements TaskControl {
  counts: TaskCounts = { total: 0, retained: 0, deleted: 0, errors: 0 };
  details: Record<string, unknown> = {};
  readonly signal: AbortSignal;
  private readonly stop = new AbortController();
  /** when the database last said "no stop": the task's claim read it, so that counts as a check */
  private lastCheck = Date.now();
  /** when the last read of stop_requested was sent (the claim's, or a check's) */
  private readSentAt: number;
  private readonly signals: StopSignals;
  private readonly unsubscribe: () => void;
  private checking: Promise<void> | undefined;
  private buffer: LogLine[] = [];
  private written = 0;
  private dropped = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly pool: pg.Pool,
    readonly execution: Execution,
    private readonly taskId: number,
    private readonly stopCheckIntervalMs: number,
    private readonly shutdown: AbortSignal,
    /** the process log, with execution/task/repository context; lines go there too */
    private readonly logger?: Logger,
    /** Date.now() before the task's claim (which read stop_requested) was sent; unknown = never */
    claimSentAt = Number.NEGATIVE_INFINITY,
  ) {
    this.signal = AbortSignal.any([this.stop.signal, shutdown]);
    this.readSentAt = claimSentAt;
    this.signals = stopSignalsOf(pool);
    this.unsubscribe = this.signals.subscribe(execution.id, () => this.stop.abort(new StopRequested("stop requested")));
  }

  /** Stop listening for this execution's stop (the task has ended). */
  close(): void {
    this.unsubscribe();
  }

  async checkpoint(): Promise<void> {
    this.throwIfStopped();
    if (!this.checking) {
      const now = Date.now();
      const since = this.signals.listeningSince;
      // a LISTEN confirmed after our last read may have missed a stop committed in between
      const unheard = since !== null && since > this.readSentAt;
      if (!unheard && now - this.lastCheck < this.stopCheckIntervalMs) return;
      this.lastCheck = now;
      this.readSentAt = now;
      // primary key lookup: at most once per interval, or once after a new LISTEN; callers
      // meanwhile wait for its answer
      this.checking = this.pool.query<{ stop: boolean }>(
        "select stop_requested as stop from ebb.executions where id = $1",
        [this.execution.id],
      ).then(({ rows }) => {
        if (rows[0]?.stop !== false) this.stop.abort(new StopRequested("stop requested"));
      }).finally(() => {
        this.checking = undefined;
      });
    }
    await this.checking;
    this.throwIfStopped();
  }

  private throwIfStopped(): void {
    if (this.shutdown.aborted) throw new StopRequested("worker shutting down");
    if (this.stop.signal.aborted) throw new StopRequested("stop requested");
  }

  log(level: LogLevel, message: string): void {
    this.logger?.[level](message);
    if (this.written + this.buffer.length >= MAX_LOG_LINES_PER_ATTEMPT) {
      this.dropped++;
      return;
    }
    this.buffer.push({ level, message: message.slice(0, 4000), at: new Date() });
    if (this.buffer.length >= LOG_FLUSH_LINES) void this.flush().catch(() => {});
    else this.flushTimer ??= setTimeout(() => void this.flush().catch(() => {}), LOG_FLUSH_MS);
  }

  /** The lines not written yet (with final: plus one with the count of dropped ones); the buffer is emptied. */
  private takeLines(final: boolean): LogLine[] {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const lines = this.buffer;
    this.buffer = [];
    if (final && this.dropped > 0) {
      lines.push({ level: "warn", message: `${this.dropped} more log line(s) dropped (at most ${MAX_LOG_LINES_PER_ATTEMPT} per attempt)`, at: new Date() });
      this.dropped = 0;
    }
    this.written += lines.length;
    return lines;
  }

  /**
   * At the end of the task: wait for writes in flight and hand over the remaining lines, which
   * the task's final statement stores (ebb.finish_task): no round trip of their own.
   */
  async finalLines(): Promise<LogLine[]> {
    await this.flushing.catch(() => {});
    return this.takeLines(true);
  }

  /** Write the buffered lines now (and, with final, the count of dropped ones). */
  async flush(final = false): Promise<void> {
    const lines = this.takeLines(final);
    const previous = this.flushing;
    this.flushing = (async () => {
      await previous.catch(() => {});
      if (lines.length === 0) return;
      await this.pool.query(
        `insert into ebb.task_logs (task_id, at, level, message)
         select $1, at, level, message from unnest($2::timestamptz[], $3::text[], $4::text[]) as l(at, level, message)`,
        [this.taskId, ...logColumns(lines)],
      );
    })();
    await this.flushing;
  }
}

export interface LogLine {
  level: LogLevel;
  message: string;
  at: Date;
}

/** Lines as the three parallel arrays of ebb.task_logs (at, level, message). */
export function logColumns(lines: readonly LogLine[]): [Date[], string[], string[]] {
  return [lines.map((l) => l.at), lines.map((l) => l.level), lines.map((l) => l.message)];
}
