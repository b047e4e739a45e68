// ebb status [--json]: the cluster as PostgreSQL sees it - the scheduler (who holds the tick
// lock right now, lag), connections of every ebb process, the job queue, open executions,
// STALE repositories and worker heartbeats. Read-only; works from any machine that reaches
// the database.
import type { Command } from "commander";
import type pg from "pg";
import { EBB_LOCK_SPACE, LOCKS } from "../../db/advisory_locks.js";
import { WORKER_SCHEMA } from "../../db/migrate.js";
import { listExecutions, type ExecutionItem } from "../../executions/execution_queries.js";
import { addDbOptions, withCliContext } from "../cli_session.js";
import { formatAge, formatDuration, formatTime } from "../output/cell_format.js";
import { renderExecutionList } from "../output/execution_view.js";
import { renderJson, writeOut } from "../output/json_output.js";
import { renderRecord, renderTable } from "../output/table.js";

export interface ClusterStatus {
  database: { name: string; server_time: Date };
  scheduler: {
    /**
     * The process holding the scheduler's tick lock at this instant, or null. Leadership is
     * per tick (a transaction-level advisory lock held for a few milliseconds) and is not
     * recorded anywhere, so most of the time nobody holds it.
     */
    tick_lock_holder: { pid: number; application_name: string; client_addr: string | null } | null;
    leader_note: string;
    schedules_enabled: number;
    schedules_disabled: number;
    schedules_invalid: number;
    /** schedules due now and not yet fired */
    due: number;
    /** how late the most overdue schedule is (0 when none is due): a scheduler not ticking shows here */
    lag_seconds: number;
    last_fired_at: Date | null;
  };
  /** connections of ebb processes to this database, by application_name (ebb:<roles>) and state */
  connections: { application_name: string; state: string; count: number }[];
  queue: { ready: number; running: number; scheduled: number; failed: number };
  executions: { running: number; pending: number; open: ExecutionItem[] };
  stale_repositories: { count: number; sample: { registry: string; repository: string; stale_since: Date; reason: string }[] };
  workers: { pool_id: string; hostname: string; pid: number; started_at: Date; last_seen_at: Date; alive: boolean }[];
  /** schedules the scheduler refused (schedules.invalid_reason): they never fire until fixed */
  invalid_schedules: { kind: string; target: string; cron: string; timezone: string; reason: string }[];
}

/** Open executions listed at most. */
const OPEN_SHOWN = 20;
const STALE_SHOWN = 10;

export async function readClusterStatus(pool: pg.Pool, opts: { workerAliveMs: number }): Promise<ClusterStatus> {
  const [db, holder, schedules, connections, queue, counts, staleCount, staleSample, workers, running, pending] = await Promise.all([
    pool.query<{ name: string; server_time: Date }>("select current_database() as name, now() as server_time"),
    // pg_locks: an advisory lock on two int4 keys is (classid, objid) with objsubid 2
    pool.query<{ pid: number; application_name: string; client_addr: string | null }>(
      `select a.pid, a.application_name, host(a.client_addr) as client_addr
         from pg_locks l join pg_stat_activity a on a.pid = l.pid
        where l.locktype = 'advisory' and l.granted and l.database = (select oid from pg_database where datname = current_database())
          and l.classid = $1 and l.objid = $2 and l.objsubid = 2
        limit 1`,
      [EBB_LOCK_SPACE, LOCKS.schedulerTick],
    ),
    // schedules_due_idx serves the due part; the counts scan ebb.schedules (one row per policy)
    pool.query<{ enabled: number; disabled: number; invalid: number; due: number; lag_seconds: number; last_fired_at: Date | null }>(
      `select count(*) filter (where enabled and invalid_reason is null)::int as enabled,
              count(*) filter (where not enabled)::int as disabled,
              count(*) filter (where invalid_reason is not null)::int as invalid,
              count(*) filter (where enabled and invalid_reason is null and next_due_at <= now())::int as due,
              coalesce(extract(epoch from now() - min(next_due_at) filter (where enabled and invalid_reason is null and next_due_at <= now())), 0)::float8 as lag_seconds,
              max(last_fired_at) as last_fired_at
         from ebb.schedules`,
    ),
    pool.query<{ application_name: string; state: string; count: number }>(
      `select application_name, coalesce(state, 'unknown') as state, count(*)::int as count
         from pg_stat_activity
        where datname = current_database() and application_name like 'ebb:%'
        group by 1, 2 order by 1, 2`,
    ),
    pool.query<{ ready: number; running: number; scheduled: number; failed: number }>(
      `select count(*) filter (where locked_at is null and run_at <= now() and attempts < max_attempts)::int as ready,
              count(*) filter (where locked_at is not null)::int as running,
              count(*) filter (where locked_at is null and run_at > now() and attempts < max_attempts)::int as scheduled,
              count(*) filter (where attempts >= max_attempts)::int as failed
         from ${WORKER_SCHEMA}._private_jobs`,
    ),
    // executions_open_idx holds the open executions only
    pool.query<{ running: number; pending: number }>(
      `select count(*) filter (where status = 'running')::int as running, count(*) filter (where status = 'pending')::int as pending
         from ebb.executions where status in ('pending', 'running')`,
    ),
    pool.query<{ count: number }>("select count(*)::int as count from ebb.repositories where stale and deleted_at is null"),
    pool.query<{ registry: string; repository: string; stale_since: Date; reason: string }>(
      `select g.name as registry, r.name as repository, r.stale_since, r.stale_reason as reason
         from ebb.repositories r join ebb.registries g on g.id = r.registry_id
        where r.stale and r.deleted_at is null order by r.stale_since limit $1`,
      [STALE_SHOWN],
    ),
    pool.query<ClusterStatus["workers"][number]>(
      `select pool_id, hostname, pid, started_at, last_seen_at,
              last_seen_at > now() - make_interval(secs => $1::float8 / 1000) as alive
         from ebb.worker_heartbeats order by hostname, pid, pool_id`,
      [opts.workerAliveMs],
    ),
    listExecutions(pool, { status: "running", limit: OPEN_SHOWN }),
    listExecutions(pool, { status: "pending", limit: OPEN_SHOWN }),
  ]);
  const invalid = await pool.query<ClusterStatus["invalid_schedules"][number]>(
    `select s.kind, coalesce(p.name, g.name, s.target_id::text) as target, s.cron, s.timezone, s.invalid_reason as reason
       from ebb.schedules s
       left join ebb.policies p on s.kind = 'retention' and p.id = s.target_id
       left join ebb.registries g on s.kind = 'sync' and g.id = s.target_id
      where s.invalid_reason is not null order by s.id limit $1`,
    [STALE_SHOWN],
  );
  const s = schedules.rows[0]!;
  const lockHolder = holder.rows[0] ?? null;
  return {
    database: db.rows[0]!,
    scheduler: {
      tick_lock_holder: lockHolder,
      leader_note: lockHolder
        ? "this process is running a scheduler tick right now"
        : "leadership is taken per tick (transaction-level advisory lock) and not recorded: no process holds it at this instant; lag_seconds shows whether ticks happen",
      schedules_enabled: s.enabled,
      schedules_disabled: s.disabled,
      schedules_invalid: s.invalid,
      due: s.due,
      lag_seconds: s.lag_seconds,
      last_fired_at: s.last_fired_at,
    },
    connections: connections.rows,
    queue: queue.rows[0]!,
    executions: { ...counts.rows[0]!, open: [...running, ...pending].slice(0, OPEN_SHOWN) },
    stale_repositories: { count: staleCount.rows[0]!.count, sample: staleSample.rows },
    workers: workers.rows,
    invalid_schedules: invalid.rows,
  };
}

function renderStatus(st: ClusterStatus): string {
  const out: string[] = [];
  const sch = st.scheduler;
  const leader = sch.tick_lock_holder
    ? `${sch.tick_lock_holder.application_name} pid ${sch.tick_lock_holder.pid}${sch.tick_lock_holder.client_addr ? ` from ${sch.tick_lock_holder.client_addr}` : ""} (ticking now)`
    : "not recorded (leadership is per tick; no tick in progress right now)";
  const alive = st.workers.filter((w) => w.alive).length;
  out.push(renderRecord([
    ["database", `${st.database.name} at ${formatTime(st.database.server_time)}`],
    ["scheduler leader", leader],
    ["schedules", `${sch.schedules_enabled} enabled, ${sch.schedules_disabled} disabled, ${sch.schedules_invalid} invalid`],
    ["scheduler lag", sch.due > 0 ? `${formatDuration(sch.lag_seconds)} (${sch.due} schedule(s) due, not fired yet)` : "none (nothing overdue)"],
    ["last fire", formatTime(sch.last_fired_at)],
    ["job queue", `${st.queue.ready} ready, ${st.queue.running} running, ${st.queue.scheduled} scheduled (retry/later), ${st.queue.failed} failed`],
    ["executions", `${st.executions.running} running, ${st.executions.pending} pending`],
    ["stale repositories", st.stale_repositories.count],
    ["workers", `${alive} alive, ${st.workers.length - alive} silent`],
  ], { maxCell: 160 }));
  out.push("connections (pool usage of every ebb process)\n");
  out.push(st.connections.length
    ? renderTable(["application", "state", "connections"], st.connections.map((c) => [c.application_name, c.state, c.count]))
    : "none\n");
  if (st.workers.length) {
    out.push("worker heartbeats\n");
    out.push(renderTable(["host", "pid", "pool", "started", "last seen", "alive"],
      st.workers.map((w) => [w.hostname, w.pid, w.pool_id, formatTime(w.started_at), formatAge(w.last_seen_at, st.database.server_time.getTime()), w.alive])));
  } else {
    out.push("worker heartbeats: none (no ebb worker is running)\n");
  }
  if (st.invalid_schedules.length) {
    out.push(`invalid schedules (never fire until fixed; ${st.invalid_schedules.length} of ${sch.schedules_invalid})\n`);
    out.push(renderTable(["kind", "target", "cron", "timezone", "reason"],
      st.invalid_schedules.map((x) => [x.kind, x.target, x.cron, x.timezone, x.reason])));
  }
  if (st.executions.open.length) {
    out.push("open executions\n");
    out.push(renderExecutionList(st.executions.open));
  }
  if (st.stale_repositories.sample.length) {
    out.push(`stale repositories (${st.stale_repositories.sample.length} of ${st.stale_repositories.count}, oldest first)\n`);
    out.push(renderTable(["registry", "repository", "stale since", "reason"],
      st.stale_repositories.sample.map((r) => [r.registry, r.repository, formatTime(r.stale_since), r.reason])));
  }
  return out.join("");
}

export function registerStatus(program: Command): void {
  const cmd = program
    .command("status")
    .description("scheduler leader and lag, connections, job queue, open executions, stale repositories, worker heartbeats")
    .option("--json", "print JSON");
  addDbOptions(cmd);
  cmd.action(async (opts: Record<string, unknown> & { json?: boolean }) => {
    await withCliContext(opts, async (ctx) => {
      const st = await readClusterStatus(ctx.pool, { workerAliveMs: ctx.config.deadWorkerTimeoutMs });
      await writeOut(opts.json ? renderJson(st) : renderStatus(st));
    });
  });
}
