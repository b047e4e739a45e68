import { Counter, Gauge } from "prom-client";
import type { AppContext } from "../service/context.js";
import { metricsRegistry } from "./registry.js";

/**
 * Gauges read at scrape time: the pool (total, idle, waiting clients, size), the job queue
 * depth (jobs ready to run and jobs locked by a worker) and the database weather (an outage
 * under way, refusals and lost connections so far by SQLSTATE).
 */
export function registerPoolMetrics(ctx: AppContext): void {
  const pool = ctx.pool;
  const weather = ctx.weather;
  if (weather) {
    new Gauge({
      name: "ebb_database_unavailable",
      help: "1 while the database refuses or drops this process's connections (ebb waits and resumes), else 0",
      registers: [metricsRegistry],
      collect() {
        this.set(weather.current ? 1 : 0);
      },
    });
    new Counter({
      name: "ebb_database_refusals_total",
      help: "connections the database refused and connections lost under a statement, by SQLSTATE (53300 too many clients, 57P03 starting up, ECONNREFUSED...)",
      labelNames: ["sqlstate"],
      registers: [metricsRegistry],
      collect() {
        this.reset();
        for (const [sqlstate, n] of weather.refusals) this.inc({ sqlstate }, n);
      },
    });
    new Counter({
      name: "ebb_database_outages_total",
      help: "database outage episodes this process waited out (or is waiting out)",
      registers: [metricsRegistry],
      collect() {
        this.reset();
        if (weather.episodes > 0) this.inc(weather.episodes);
      },
    });
  }
  new Gauge({
    name: "ebb_pool_connections",
    help: "connections of this process's pg.Pool by state (size is the configured maximum)",
    labelNames: ["state"],
    registers: [metricsRegistry],
    collect() {
      this.set({ state: "total" }, pool.totalCount);
      this.set({ state: "idle" }, pool.idleCount);
      this.set({ state: "waiting" }, pool.waitingCount);
      this.set({ state: "size" }, ctx.config.poolSize);
    },
  });
  new Gauge({
    name: "ebb_job_queue_depth",
    help: "graphile-worker jobs: ready (due, unlocked) and running (locked)",
    labelNames: ["state"],
    registers: [metricsRegistry],
    async collect() {
      // ebb_worker._private_jobs is graphile-worker's table; a count over it is cheap at ebb's
      // queue sizes (tasks are fanned out in batches, not all at once).
      const { rows } = await pool.query<{ ready: number; running: number }>(
        `select count(*) filter (where locked_at is null and run_at <= now() and attempts < max_attempts)::int as ready,
                count(*) filter (where locked_at is not null)::int as running
           from ebb_worker._private_jobs`,
      );
      this.set({ state: "ready" }, rows[0]?.ready ?? 0);
      this.set({ state: "running" }, rows[0]?.running ?? 0);
    },
  });
}
