import { hostname } from "node:os";
import type pg from "pg";

/**
 * The heartbeat of one graphile-worker pool: a row in ebb.worker_heartbeats refreshed every
 * intervalMs. Recovery (recovery.ts) declares a pool dead when its row is older than the
 * dead-worker timeout and releases its jobs. Deleted on clean shutdown. While the database
 * is unavailable a beat waits for a connection (the pool's connect waits out refusals);
 * the beats due meanwhile are skipped, not piled up behind it.
 */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> = Promise.resolve();
  private inFlight = false;

  constructor(private readonly pool: pg.Pool, readonly poolId: string, private readonly intervalMs: number, private readonly onError: (err: unknown) => void) {}

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => {
      if (this.inFlight) return;
      this.inFlight = true;
      this.beating = this.beat().catch(this.onError).finally(() => (this.inFlight = false));
    }, this.intervalMs);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    await this.pool.query(
      `insert into ebb.worker_heartbeats (pool_id, hostname, pid) values ($1, $2, $3)
       on conflict (pool_id) do update set last_seen_at = now()`,
      [this.poolId, hostname(), process.pid],
    );
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.beating.catch(() => {});
    await this.pool.query("delete from ebb.worker_heartbeats where pool_id = $1", [this.poolId]).catch(this.onError);
  }
}
