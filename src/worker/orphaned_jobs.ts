import type pg from "pg";
import type { WorkerEvents } from "graphile-worker";
import { WORKER_SCHEMA } from "../db/migrate.js";

/**
 * Jobs this live process holds locked but no longer runs, released so they run again.
 *
 * graphile-worker 0.17 does not await a job's completion or failure (worker.js calls
 * completeJob/failJob and moves on): when the database connection dies under that one
 * statement (a PostgreSQL restart: 57P01, ECONNRESET), the rejection is unhandled and the job
 * stays locked by this worker pool - for graphile-worker's 4 hours, since the pool is alive
 * and its heartbeat fresh, so crash recovery (recovery.ts) rightly leaves it alone. The same
 * holds for a claim whose answer was lost. Such a connection error is not fatal to ebb
 * (process_lifecycle.ts); this sweep finds those jobs instead: locked by this pool for longer
 * than `minAgeMs` and not held here - neither running (graphile-worker's job:start /
 * job:complete events) nor waiting in the pool's localQueue (localQueue:getJobs:complete /
 * localQueue:returnJobs; jobs fetched in a batch are locked while they wait).
 * Unlocked, the job runs again: a task already ended is only finalized (task_job.ts), a
 * failure that was not recorded becomes a retry.
 */
export class OrphanedJobSweeper {
  /** jobs running here or waiting in this pool's localQueue */
  private readonly held = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<unknown> = Promise.resolve();
  private inFlight = false;

  constructor(
    private readonly pool: pg.Pool,
    events: WorkerEvents,
    private readonly opts: { minAgeMs: number; everyMs: number; onReleased: (ids: string[]) => void; onError: (err: unknown) => void },
  ) {
    events.on("localQueue:getJobs:complete", ({ jobs }) => jobs.forEach((job) => this.held.add(String(job.id))));
    events.on("localQueue:returnJobs", ({ jobs }) => jobs.forEach((job) => this.held.delete(String(job.id))));
    events.on("job:start", ({ job }) => this.held.add(String(job.id)));
    events.on("job:complete", ({ job }) => this.held.delete(String(job.id)));
  }

  start(workerPoolId: string): void {
    this.timer = setInterval(() => {
      // one sweep at a time: during a database outage a sweep waits for its connection
      if (this.inFlight) return;
      this.inFlight = true;
      this.sweeping = this.sweep(workerPoolId).then(
        (ids) => ids.length > 0 && this.opts.onReleased(ids),
        this.opts.onError,
      ).finally(() => (this.inFlight = false));
    }, this.opts.everyMs);
    this.timer.unref();
  }

  /** Release this pool's locked jobs that are not held here; returns their ids. */
  async sweep(workerPoolId: string): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string }>(
      `with orphans as (
         select id, job_queue_id from ${WORKER_SCHEMA}._private_jobs
          where locked_by = $1 and locked_at < now() - $3 * interval '1 millisecond'
            and not (id = any ($2::bigint[]))
          for update skip locked),
       queues as (
         update ${WORKER_SCHEMA}._private_job_queues q set locked_at = null, locked_by = null
           from orphans o where q.id = o.job_queue_id and q.locked_by = $1)
       update ${WORKER_SCHEMA}._private_jobs j set locked_at = null, locked_by = null
         from orphans o where j.id = o.id
       returning j.id::text as id`,
      [workerPoolId, [...this.held], this.opts.minAgeMs],
    );
    return rows.map((r) => r.id);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.sweeping.catch(() => {});
  }
}
