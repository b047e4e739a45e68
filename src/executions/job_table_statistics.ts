import type pg from "pg";
import { WORKER_SCHEMA } from "../db/migrate.js";

/**
 * Keeps PostgreSQL's statistics of graphile-worker's job table current when ebb adds many
 * jobs at once (a midnight storm's plan jobs, an execution's thousands of task jobs).
 *
 * The job table is usually near empty, and so are its statistics. graphile-worker's batch
 * fetch (the worker's localQueue, src/worker/runner.ts) is then planned as a sequential scan
 * and sort of every queued job - 9 ms per fetch with 20,000 jobs queued, against 0.7 ms
 * through its index once the table is analyzed (measured, BENCHMARKS.md); autovacuum
 * analyzes it only up to a minute later. So after `threshold` jobs added by this process,
 * at most once per `minIntervalMs`, the table is analyzed in the background
 * (`skip_locked`: never waits behind autovacuum). Best effort: a failed analyze (e.g. a
 * database user that does not own the table) is reported once and stops further attempts.
 */
export class JobTableStatistics {
  private added = 0;
  private lastAt = 0;
  private running = false;
  private disabled = false;

  constructor(
    private readonly pool: Pick<pg.Pool, "query">,
    private readonly onError: (err: unknown) => void,
    private readonly opts = { threshold: 1000, minIntervalMs: 2000 },
  ) {}

  jobsAdded(count: number): void {
    if (this.disabled || count <= 0) return;
    this.added += count;
    if (this.added < this.opts.threshold || this.running || Date.now() - this.lastAt < this.opts.minIntervalMs) return;
    this.added = 0;
    this.running = true;
    this.lastAt = Date.now();
    this.pool.query(`analyze (skip_locked) ${WORKER_SCHEMA}._private_jobs`).then(
      () => (this.running = false),
      (err: unknown) => {
        this.running = false;
        this.disabled = true;
        this.onError(err);
      },
    );
  }
}
