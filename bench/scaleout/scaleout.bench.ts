// "scaleout" (issue 8): the midnight storm (bench/midnight_storm, the same runStorm, the same
// no-op kind and process program) drained by 1, 2 and 4 ebb processes, connected directly to
// PostgreSQL and through PgBouncer in transaction mode (EBB_DATABASE_POOLING=transaction,
// workers polling instead of LISTEN). Reports time to drain and the peak server connections
// PostgreSQL saw, sampled from pg_stat_activity.
import { startPgBouncer, type PgBouncer } from "../../test/support/pgbouncer.js";
import { NOOP_KIND, TASKS_PER_EXECUTION } from "../midnight_storm/noop_kind.js";
import { noopSchedules, runStorm, type StormResult } from "../midnight_storm/storm_run.js";
import { SERVER_URL } from "../support/bench_database.js";
import { startConnectionSampler } from "../support/connection_sampler.js";
import { startCpuAccounting, type CpuWindow } from "./cpu_accounting.js";
import type { Benchmark, ResultTable } from "../support/benchmark.js";
import { mib } from "../support/memory_sampler.js";
import { fmtCount, fmtRate, fmtRatio, fmtSeconds } from "../support/report.js";
import { EBB_DEFAULTS } from "../support/ebb_defaults.js";

const POOL_SIZE = EBB_DEFAULTS.poolSize;
const CONCURRENCY = EBB_DEFAULTS.workerConcurrency;
/** PgBouncer's default_pool_size (and max_db_connections): one process's pool */
const PGBOUNCER_POOL = 10;
const POLL_INTERVAL_MS = 1000;

type Mode = "direct" | "pgbouncer";

export const scaleoutBenchmark: Benchmark = {
  name: "scaleout",
  description: "midnight storm drained by 1/2/4 ebb processes, direct and through PgBouncer (transaction mode): drain time, peak server connections",
  async run(ctx) {
    const full = ctx.scale === "full";
    // BENCH_SCALEOUT_SCHEDULES=n and BENCH_SCALEOUT_PROCESSES=1,2 override (development)
    const schedules = Number(process.env.BENCH_SCALEOUT_SCHEDULES) || (full ? 2000 : 300);
    const processCounts = process.env.BENCH_SCALEOUT_PROCESSES
      ? process.env.BENCH_SCALEOUT_PROCESSES.split(",").map(Number)
      : [1, 2, 4];
    const lead = full ? 10 : 6;
    const modes: Mode[] = ["direct", "pgbouncer"];
    const results: { mode: Mode; processes: number; r: StormResult; peakServers: number; cpu: CpuWindow }[] = [];
    const failures: (string | number)[][] = [];
    let bouncer: PgBouncer | undefined;
    try {
      bouncer = await startPgBouncer({ serverUrl: SERVER_URL, poolMode: "transaction", poolSize: PGBOUNCER_POOL, maxClientConn: 1000 });
      for (const processes of processCounts) {
        for (const mode of modes) {
          const db = await ctx.freshDatabase(`scaleout_${mode}_${processes}`);
          try {
            await db.pool.query("insert into ebb.execution_kinds (name) values ($1) on conflict do nothing", [NOOP_KIND]);
            const env: NodeJS.ProcessEnv = mode === "pgbouncer"
              ? { DATABASE_URL: bouncer.url(db.name), EBB_DATABASE_POOLING: "transaction", EBB_WORKER_POLL_INTERVAL_MS: String(POLL_INTERVAL_MS) }
              : {};
            // every backend but the bench's own: through PgBouncer a server connection carries the
            // application_name of the last client it served, and none before the first
            const servers = await startConnectionSampler(SERVER_URL, db.name, { ebbPattern: /^(?!bench:)/ });
            const cpuAccounting = startCpuAccounting(db.name);
            let r: StormResult;
            try {
              r = await runStorm(db, {
                prepare: noopSchedules(db, NOOP_KIND, schedules),
                processes,
                poolSize: POOL_SIZE,
                workerConcurrency: CONCURRENCY,
                leadSeconds: lead,
                timeoutMs: 5 * 60_000,
                log: ctx.log,
                env,
              });
            } finally {
              cpuAccounting.stop();
              await servers.stop();
            }
            // the storm's window: the slot -> the last execution's end (same machine, same clock)
            const { rows: [w] } = await db.pool.query<{ slot: Date; last: Date | null }>(
              "select min(fire_time) as slot, max(ended_at) as last from ebb.executions");
            const cpu = cpuAccounting.window(w!.slot.getTime(), (w!.last ?? new Date()).getTime());
            const peakServers = (await servers.stop()).ebbTotal;
            ctx.log(`${mode}, ${processes} process(es): ${fmtSeconds(r.seconds)} s, ${fmtRate(r.jobsPerSecond)} jobs/s, peak server connections ${peakServers}, CPU cores ebb ${cpu.ebbCores.toFixed(2)} postgres ${cpu.postgresCores.toFixed(2)} pgbouncer ${cpu.pgbouncerCores.toFixed(2)} other ${cpu.otherCores.toFixed(2)}`);
            results.push({ mode, processes, r, peakServers, cpu });
          } catch (err) {
            ctx.log(`${mode}, ${processes} process(es) FAILED: ${(err as Error).message}`);
            failures.push([mode, processes, `FAILED: ${(err as Error).message.split("\n")[0]}`]);
          } finally {
            await db.drop();
          }
        }
      }
    } finally {
      await bouncer?.stop();
    }
    if (results.length === 0) throw new Error(`every storm failed: ${failures.map((f) => f[2]).join("; ")}`);
    const refused = bouncer ? bouncer.log().split("\n").filter((l) => /no more connections allowed|too many clients/i.test(l)) : [];

    const base = (mode: Mode) => results.find((x) => x.mode === mode && x.processes === Math.min(...processCounts))?.r;
    const rows: (string | number)[][] = results.map(({ mode, processes, r, peakServers, cpu }) => {
      const one = base(mode);
      return [
        mode === "direct" ? "direct" : `PgBouncer (transaction, pool ${PGBOUNCER_POOL})`,
        processes,
        r.finished ? fmtCount(r.executions) : `NOT FINISHED: ${fmtCount(r.executions)} of ${fmtCount(r.expectedExecutions)}`,
        fmtCount(r.jobs),
        fmtSeconds(r.firstStartSeconds),
        fmtSeconds(r.seconds),
        fmtRate(r.jobsPerSecond),
        one ? fmtRatio(r.jobsPerSecond / one.jobsPerSecond) : "-",
        `${peakServers}`,
        `${processes * POOL_SIZE}`,
        `${cpu.ebbCores.toFixed(2)} / ${cpu.postgresCores.toFixed(2)} / ${cpu.pgbouncerCores.toFixed(2)} / ${cpu.otherCores.toFixed(2)}`,
        r.jobs ? `${(((cpu.ebbCores + cpu.postgresCores + cpu.pgbouncerCores) * cpu.seconds * 1000) / r.jobs).toFixed(1)}` : "-",
        mib(r.peakRssPerProcess),
      ];
    });
    for (const f of failures) rows.push([f[0]!, f[1]!, f[2]!, "", "", "", "", "", "", "", "", "", ""]);
    const cappedByBouncer = results.filter((x) => x.mode === "pgbouncer").every((x) => x.peakServers <= PGBOUNCER_POOL);
    const notes = [
      `${fmtCount(schedules)} daily schedules due at the same second (spread 0), the no-op kind (${TASKS_PER_EXECUTION} tasks per execution; jobs = one plan job per execution + one per task); every process: pool ${POOL_SIZE}, worker concurrency ${CONCURRENCY}; process 1 runs scheduler + worker, the others worker only.`,
      `direct: each process connects to PostgreSQL (graphile-worker LISTENs for new jobs). PgBouncer: Debian's pgbouncer ${"1.18"} on loopback, pool_mode transaction, default_pool_size = max_db_connections = ${PGBOUNCER_POOL}; ebb with EBB_DATABASE_POOLING=transaction (no prepared statements, no LISTEN, idle workers poll every ${POLL_INTERVAL_MS} ms).`,
      `time = nominal cron slot to the last execution's ended_at (database clock); first start = slot to the first execution's start; speed-up = jobs/s over the same mode's 1-process row.`,
      `CPU cores = CPU seconds per second of the storm (slot -> all done) from /proc: the ebb processes, the PostgreSQL backends of the storm's database, PgBouncer, and everything else on the machine (other sessions' work included); CPU ms per job = (ebb + PostgreSQL + PgBouncer) CPU over jobs.`,
      `peak server connections = highest number of backends on the storm's database in one pg_stat_activity sample (every 50 ms), the bench's own (bench:*) excluded; client connections = what the ebb pools may open. PgBouncer kept PostgreSQL at or under its pool: ${cappedByBouncer ? "yes, in every row" : "NO"}; PgBouncer refused a client: ${refused.length ? `YES (${refused.length} lines)` : "never"}.`,
    ];
    const tables: ResultTable[] = [
      {
        title: `scale-out: midnight storm of ${fmtCount(schedules)} schedules, 1/2/4 processes, direct and through PgBouncer`,
        head: ["connection", "processes", "executions", "jobs", "first start s", "slot -> all done s", "jobs/s", "speed-up", "peak server conns", "client conns", "CPU cores: ebb / PostgreSQL / PgBouncer / other", "CPU ms per job", "peak RSS/process"],
        rows,
        notes,
      },
    ];
    return tables;
  },
};
