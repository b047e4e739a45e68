import { FailureStreak } from "../db/backoff.js";
import type { AppContext } from "../service/context.js";
import { pruneHistory } from "./history_pruning.js";
import { recover } from "./recovery.js";

/** History is pruned this often (and once at start). */
export const PRUNE_INTERVAL_MS = 10 * 60_000;

export interface Maintenance {
  stop(): Promise<void>;
}

/**
 * Periodic upkeep run by every ebb process that schedules or works: crash recovery and
 * reconciliation every heartbeatIntervalMs (recovery.ts), history pruning every 10 minutes.
 * Both are safe to run from many processes at once. A failed pass is retried after the
 * period, or a backoff when it keeps failing; an outage is logged once by ctx.weather.
 */
export function startMaintenance(ctx: AppContext): Maintenance {
  const log = ctx.logger.child({ component: "maintenance" });
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let lastPrune = 0;
  const failures = new FailureStreak();
  const loop = async () => {
    if (stopped) return;
    let delay = ctx.config.heartbeatIntervalMs;
    try {
      const r = await recover(ctx.pool, { deadWorkerTimeoutMs: ctx.config.deadWorkerTimeoutMs });
      if (r.deadPools.length || r.lostTasks || r.lostExecutions || r.finalized || r.released) {
        log.warn({ deadPools: r.deadPools, lostTasks: r.lostTasks, lostExecutions: r.lostExecutions, finalized: r.finalized, released: r.released }, "recovered work");
      }
      if (Date.now() - lastPrune >= PRUNE_INTERVAL_MS) {
        lastPrune = Date.now();
        const deleted = await pruneHistory(ctx.pool, { keepLast: ctx.config.historyKeepLast, keepDays: ctx.config.historyKeepDays });
        if (deleted) log.info({ deleted }, "pruned execution history");
      }
      failures.succeeded();
      ctx.weather?.ok();
    } catch (err) {
      delay = failures.failed(ctx.config.heartbeatIntervalMs);
      if (!ctx.weather?.report(err, "maintenance")) log.warn({ err: (err as Error).message, retryInMs: delay }, "maintenance failed; retrying later");
    }
    if (!stopped) timer = setTimeout(() => (running = loop()), delay);
  };
  running = loop();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
