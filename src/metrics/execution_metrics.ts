// Execution, retention and scheduler gauges, read from SQL at scrape time: any ebb process
// with the http role reports the state of the whole cluster (the database is the truth), not
// only what it did itself. One multi-statement round trip per scrape (all gauges share it),
// reused for SNAPSHOT_TTL_MS so that several scrapers do not multiply the cost.
//
// Windowed gauges: decisions and artifact counts cover executions created in the last 24
// hours (history is pruned, so an all-time total would go down; rate() over these is
// meaningless - alert on levels: deletions failed, executions in error, scheduler lag).
import { Gauge } from "prom-client";
import type pg from "pg";
import { EXECUTION_STATUSES } from "../executions/execution_queries.js";
import type { AppContext } from "../service/context.js";
import { metricsRegistry } from "./registry.js";

export const SNAPSHOT_TTL_MS = 5000;

export const EXECUTION_METRIC_NAMES = [
  "ebb_executions", "ebb_open_execution_tasks", "ebb_retention_decisions", "ebb_execution_artifacts",
  "ebb_scheduler_lag_seconds", "ebb_schedules", "ebb_workers", "ebb_stale_repositories", "ebb_metrics_sql_up",
] as const;

interface Snapshot {
  executions: { kind: string; status: string; count: number }[];
  kinds: string[];
  tasks: { kind: string; status: string; count: number }[];
  decisions: { action: string; outcome: string; count: number }[];
  artifacts: { kind: string; total: number; retained: number; deleted: number; errors: number }[];
  schedules: { enabled: number; disabled: number; invalid: number; due: number; lag_seconds: number };
  workers: { alive: number; silent: number };
  stale: number;
}

/** The statements of one scrape, each with the index it relies on. */
function snapshotSql(workerAliveMs: number): string {
  const aliveSecs = Math.max(1, Math.round(workerAliveMs / 1000));
  return `
    -- executions by kind and status: one scan of ebb.executions (pruned to the kept history)
    select kind, status, count(*)::int as count from ebb.executions group by kind, status;
    select name from ebb.execution_kinds order by name;
    -- tasks of open executions (executions_open_idx, then tasks (execution_id, key) unique)
    select e.kind, t.status, count(*)::int as count
      from ebb.executions e join ebb.tasks t on t.execution_id = e.id
     where e.status in ('pending', 'running') group by e.kind, t.status;
    -- decisions other than retain (retained counts are in ebb_execution_artifacts) of the last
    -- 24 hours' executions: decisions_execution_action_idx, an index-only range per action
    select d.action, d.outcome, count(*)::int8 as count
      from ebb.decisions d
     where d.execution_id in (select id from ebb.executions where created_at > now() - interval '24 hours')
       and d.action in ('delete', 'untag', 'protected', 'error')
     group by d.action, d.outcome;
    -- artifact counts of the last 24 hours' executions: the aggregates written when an
    -- execution ends, live task sums (execution_summary) for the open ones only
    select kind, sum(total)::int8 as total, sum(retained)::int8 as retained,
           sum(deleted)::int8 as deleted, sum(errors)::int8 as errors
      from (select kind, coalesce(total, 0) as total, coalesce(retained, 0) as retained,
                   coalesce(deleted, 0) as deleted, coalesce(errors, 0) as errors
              from ebb.executions
             where created_at > now() - interval '24 hours' and status not in ('pending', 'running')
            union all
            select s.kind, s.total, s.retained, s.deleted, s.errors
              from ebb.execution_summary s
             where s.id in (select id from ebb.executions where status in ('pending', 'running'))) x
     group by kind;
    -- schedules (one row per policy/sync target); due part served by schedules_due_idx
    select count(*) filter (where enabled and invalid_reason is null)::int as enabled,
           count(*) filter (where not enabled)::int as disabled,
           count(*) filter (where invalid_reason is not null)::int as invalid,
           count(*) filter (where enabled and invalid_reason is null and next_due_at <= now())::int as due,
           coalesce(extract(epoch from now() - min(next_due_at) filter (where enabled and invalid_reason is null and next_due_at <= now())), 0)::float8 as lag_seconds
      from ebb.schedules;
    select count(*) filter (where last_seen_at > now() - interval '${aliveSecs} seconds')::int as alive,
           count(*) filter (where last_seen_at <= now() - interval '${aliveSecs} seconds')::int as silent
      from ebb.worker_heartbeats;
    select count(*)::int as stale from ebb.repositories where stale and deleted_at is null;`;
}

export async function readMetricsSnapshot(pool: pg.Pool, workerAliveMs: number): Promise<Snapshot> {
  const results = (await pool.query(snapshotSql(workerAliveMs))) as unknown as pg.QueryResult[];
  const rows = (i: number) => results[i]!.rows as never[];
  return {
    executions: rows(0),
    kinds: (rows(1) as { name: string }[]).map((r) => r.name),
    tasks: rows(2),
    decisions: rows(3),
    artifacts: rows(4),
    schedules: rows(5)[0]!,
    workers: rows(6)[0]!,
    stale: (rows(7)[0]! as { stale: number }).stale,
  };
}

/**
 * Register the gauges on metricsRegistry (once per process). `snapshotTtlMs` (default
 * SNAPSHOT_TTL_MS) is how long one snapshot serves scrapes; tests set it short.
 */
export function registerExecutionMetrics(ctx: AppContext, opts: { snapshotTtlMs?: number } = {}): void {
  const ttlMs = opts.snapshotTtlMs ?? SNAPSHOT_TTL_MS;
  // A failed read (database down) must not fail the whole scrape: these gauges are then
  // left empty and ebb_metrics_sql_up says 0; process and pool metrics still answer.
  let cached: { at: number; value: Promise<Snapshot | undefined> } | undefined;
  const snapshot = (): Promise<Snapshot | undefined> => {
    if (!cached || Date.now() - cached.at > ttlMs) {
      const value = readMetricsSnapshot(ctx.pool, ctx.config.deadWorkerTimeoutMs).catch((err: unknown) => {
        ctx.logger.debug({ err: (err as Error).message }, "metrics snapshot failed");
        cached = undefined;
        return undefined;
      });
      cached = { at: Date.now(), value };
    }
    return cached.value;
  };
  const registers = [metricsRegistry];
  // a second service in one process (tests) replaces the gauges instead of failing
  for (const name of EXECUTION_METRIC_NAMES) metricsRegistry.removeSingleMetric(name);

  new Gauge({
    name: "ebb_executions",
    help: "executions in the kept history by kind and status (pending and running are the open ones)",
    labelNames: ["kind", "status"],
    registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      if (!s) return;
      for (const kind of s.kinds) for (const status of EXECUTION_STATUSES) this.set({ kind, status }, 0);
      for (const r of s.executions) this.set({ kind: r.kind, status: r.status }, r.count);
    },
  });
  new Gauge({
    name: "ebb_open_execution_tasks",
    help: "tasks of open (pending or running) executions by kind and task status",
    labelNames: ["kind", "status"],
    registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      if (!s) return;
      for (const kind of s.kinds) for (const status of EXECUTION_STATUSES) this.set({ kind, status }, 0);
      for (const r of s.tasks) this.set({ kind: r.kind, status: r.status }, r.count);
    },
  });
  new Gauge({
    name: "ebb_retention_decisions",
    help: "retention decisions other than retain, of executions created in the last 24 hours, by action and outcome (delete/deleted: deletions done; delete/failed: deletions that failed; */dry_run: would be done)",
    labelNames: ["action", "outcome"],
    registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      if (!s) return;
      for (const action of ["delete", "untag"]) for (const outcome of ["deleted", "failed", "dry_run"]) this.set({ action, outcome }, 0);
      for (const r of s.decisions) this.set({ action: r.action, outcome: r.outcome }, r.count);
    },
  });
  new Gauge({
    name: "ebb_execution_artifacts",
    help: "artifact counts of executions created in the last 24 hours by kind: total seen, retained, deleted, errors",
    labelNames: ["kind", "count"],
    registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      if (!s) return;
      for (const r of s.artifacts) {
        for (const count of ["total", "retained", "deleted", "errors"] as const) this.set({ kind: r.kind, count }, r[count]);
      }
    },
  });
  new Gauge({
    name: "ebb_scheduler_lag_seconds",
    help: "how late the most overdue enabled schedule is (0 when none is due): grows when no scheduler ticks",
    registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      if (s) this.set(s.schedules.lag_seconds);
    },
  });
  new Gauge({
    name: "ebb_schedules",
    help: "schedules by state: enabled, disabled, invalid (refused by the cron parser), due (due now, not fired yet)",
    labelNames: ["state"],
    registers,
    async collect() {
      const s = (await snapshot())?.schedules;
      this.reset();
      if (s) for (const state of ["enabled", "disabled", "invalid", "due"] as const) this.set({ state }, s[state]);
    },
  });
  new Gauge({
    name: "ebb_workers",
    help: "worker pools by heartbeat: alive (seen within the dead-worker timeout) or silent",
    labelNames: ["state"],
    registers,
    async collect() {
      const w = (await snapshot())?.workers;
      this.reset();
      if (!w) return;
      this.set({ state: "alive" }, w.alive);
      this.set({ state: "silent" }, w.silent);
    },
  });
  new Gauge({
    name: "ebb_stale_repositories",
    help: "repositories marked STALE by sync (retention does not delete in them until a sync succeeds)",
    registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      if (s) this.set(s.stale);
    },
  });
  new Gauge({
    name: "ebb_metrics_sql_up",
    help: "1 when the execution/scheduler gauges could be read from the database at this scrape, else 0",
    registers,
    async collect() {
      this.set((await snapshot()) ? 1 : 0);
    },
  });
}
