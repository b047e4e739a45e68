import type pg from "pg";

/** graphile-worker's channel for new jobs (payload {"count": n}: idle workers woken). */
export const JOBS_INSERT_CHANNEL = "jobs:insert";

/**
 * ebb's addition to the payload: how many of the jobs are grouped tasks, the only jobs the
 * worker's one-by-one lane runs (src/worker/runner.ts). Only such notifications wake that
 * lane: its fetch passes over every queued job of the other lane, so waking it for a storm of
 * plan jobs and dry-run tasks cost a scan of the whole queue per idle worker each time.
 */
export interface JobsInsertPayload {
  count: number;
  ebbGrouped?: number;
}

/**
 * Wakes idle workers (of every process) after ebb.plan_tasks inserted task jobs without a
 * NOTIFY (a NOTIFY inside the writing transaction serialises every such
 * commit through its WAL flush). One NOTIFY per `delayMs` at most per process, sent in a
 * transaction of its own that writes nothing, so it holds PostgreSQL's notify lock without a
 * flush. Best effort: a lost one costs an idle worker at most its poll interval.
 */
export class JobNotifier {
  private pending = 0;
  private pendingGrouped = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly pool: Pick<pg.Pool, "query">, private readonly delayMs = 20) {}

  /** `grouped` of the `count` jobs are grouped tasks */
  jobsAdded(count: number, grouped = 0): void {
    if (count <= 0) return;
    this.pending += count;
    this.pendingGrouped += Math.min(grouped, count);
    this.timer ??= setTimeout(() => void this.flush(), this.delayMs);
  }

  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const payload: JobsInsertPayload = { count: this.pending };
    if (this.pendingGrouped > 0) payload.ebbGrouped = this.pendingGrouped;
    this.pending = 0;
    this.pendingGrouped = 0;
    if (payload.count === 0) return;
    await this.pool.query("select pg_notify($1, $2)", [JOBS_INSERT_CHANNEL, JSON.stringify(payload)]).catch(() => {});
  }
}
