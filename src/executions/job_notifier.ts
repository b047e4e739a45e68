import type pg from "pg";

/** graphile-worker's channel for new jobs (payload {"count": n}: idle workers woken). */
const CHANNEL = "jobs:insert";

/**
 * Wakes idle workers (of every process) after ebb.plan_tasks inserted task jobs without a
 * NOTIFY (migration 0008: a NOTIFY inside the writing transaction serialises every such
 * commit through its WAL flush). One NOTIFY per `delayMs` at most per process, sent in a
 * transaction of its own that writes nothing, so it holds PostgreSQL's notify lock without a
 * flush. Best effort: a lost one costs an idle worker at most its poll interval.
 */
export class JobNotifier {
  private pending = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly pool: Pick<pg.Pool, "query">, private readonly delayMs = 20) {}

  jobsAdded(count: number): void {
    if (count <= 0) return;
    this.pending += count;
    this.timer ??= setTimeout(() => void this.flush(), this.delayMs);
  }

  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const count = this.pending;
    this.pending = 0;
    if (count === 0) return;
    await this.pool.query("select pg_notify($1, $2)", [CHANNEL, JSON.stringify({ count })]).catch(() => {});
  }
}
