import { FailureStreak } from "../db/backoff.js";
import type { AppContext } from "../service/context.js";
import { JobTableStatistics } from "../executions/job_table_statistics.js";
import { CronCache } from "./cron_expression.js";
import { schedulerTick } from "./tick.js";

/** Schedules examined per tick; a bigger backlog is worked through in back-to-back ticks. */
export const TICK_BATCH = 2000;

export interface SchedulerRole {
  stop(): Promise<void>;
}

/**
 * The scheduler role: tick every schedulerIntervalMs. Every process with this role ticks;
 * the tick's advisory lock makes one of them do the work each time, so replicas can come
 * and go freely. A new or changed schedule row is picked up by the next tick (its
 * next_due_at is reset by a trigger); a failing tick is logged and retried, after a
 * backoff when it fails again and again. A refused or lost connection is an outage the
 * weather logs once (ctx.weather); the tick's transaction either committed or did not, and
 * the next tick fires whatever is still due (a slot fires once: UNIQUE (schedule_id, fire_time)).
 */
export function startScheduler(ctx: AppContext): SchedulerRole {
  const log = ctx.logger.child({ component: "scheduler" });
  const cronCache = new CronCache();
  // a storm's plan jobs: keep the job table's statistics current (job_table_statistics.ts)
  const statistics = new JobTableStatistics(ctx.pool, (err) =>
    log.warn({ err: (err as Error).message }, "could not analyze graphile-worker's job table after adding many jobs; autovacuum will"));
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const failures = new FailureStreak();
  const loop = async () => {
    if (stopped) return;
    let again = false;
    let delay = ctx.config.schedulerIntervalMs;
    try {
      const r = await schedulerTick(ctx.pool, { graceMs: ctx.config.misfireGraceMs, batchSize: TICK_BATCH, cronCache });
      if (r.fired || r.missed || r.overlapped || r.invalid) {
        log.info({ fired: r.fired, missed: r.missed, overlapped: r.overlapped, invalid: r.invalid, examined: r.examined }, "scheduler tick");
      }
      statistics.jobsAdded(r.fired);
      again = r.more;
      failures.succeeded();
      ctx.weather?.ok();
    } catch (err) {
      delay = failures.failed(ctx.config.schedulerIntervalMs);
      if (!ctx.weather?.report(err, "scheduler tick")) {
        log.warn({ err: (err as Error).message, retryInMs: delay }, "scheduler tick failed; retrying");
      }
    }
    if (!stopped) timer = setTimeout(() => (running = loop()), again ? 0 : delay);
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
