// One midnight storm: S schedules on the same daily cron slot (a few seconds ahead, UTC, no
// spread: the worst case, every policy due at the same second), P real ebb processes on the
// database (the first runs scheduler + worker, the others worker only), each with its own
// pool of `poolSize`. Measured in the database: from the nominal slot to the last execution's
// ended_at, the jobs that ran (one plan job per execution + one job per task), and - sampled
// from pg_stat_activity every 50 ms - the peak connections of every ebb:* application_name.
import { fileURLToPath } from "node:url";
import type { BenchDatabase } from "../support/bench_database.js";
import { SERVER_URL } from "../support/bench_database.js";
import { startConnectionSampler, type ConnectionPeaks } from "../support/connection_sampler.js";
import { startEbb, type EbbChild } from "../support/ebb_processes.js";
import type { StatementCounts } from "../support/statement_counter.js";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const STORM_PROCESS = fileURLToPath(new URL("./storm_process.ts", import.meta.url));

export interface StormOptions {
  /**
   * Creates the schedules (directly, or through policies whose trigger creates them), all on
   * `cron`; returns how many executions the slot must produce.
   */
  prepare(cron: string): Promise<number>;
  processes: number;
  poolSize: number;
  workerConcurrency: number;
  /** seconds between now and the cron slot: processes must start and initialise every schedule first */
  leadSeconds: number;
  timeoutMs: number;
  log(message: string): void;
  /** extra environment of the ebb processes */
  env?: NodeJS.ProcessEnv;
}

export interface StormResult {
  /** false: stopped at the timeout; the numbers are the progress by then */
  finished: boolean;
  expectedExecutions: number;
  executions: number;
  executionStatus: Record<string, number>;
  tasks: number;
  taskStatus: Record<string, number>;
  jobs: number;
  artifacts: number;
  /** slot -> first execution started */
  firstStartSeconds: number;
  /** slot -> last execution ended */
  seconds: number;
  jobsPerSecond: number;
  connections: ConnectionPeaks;
  configuredConnections: number;
  peakRssPerProcess: number;
  /** SQL statements the ebb processes sent from just before the slot to the end */
  statements: number;
  /** the same by statement text, summed over the processes, most time first */
  statementDetail: StatementCounts["statements"];
}

function readCounts(file: string): StatementCounts {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as StatementCounts;
  } catch {
    return { total: 0, statements: [] };
  }
}

/** after - before, summed over the processes' files */
function countSince(before: StatementCounts[], files: string[]): { total: number; statements: StatementCounts["statements"] } {
  const by = new Map<string, { count: number; ms: number }>();
  let total = 0;
  files.forEach((f, i) => {
    const after = readCounts(f);
    total += after.total - (before[i]?.total ?? 0);
    const base = new Map((before[i]?.statements ?? []).map((x) => [x.sql, x]));
    for (const x of after.statements) {
      const b = base.get(x.sql);
      const s = by.get(x.sql) ?? { count: 0, ms: 0 };
      s.count += x.count - (b?.count ?? 0);
      s.ms += x.ms - (b?.ms ?? 0);
      by.set(x.sql, s);
    }
  });
  return { total, statements: [...by].map(([sql, s]) => ({ sql, ...s })).filter((x) => x.count > 0).sort((a, b) => b.ms - a.ms) };
}

function cronAt(slot: Date): string {
  return `${slot.getUTCSeconds()} ${slot.getUTCMinutes()} ${slot.getUTCHours()} * * *`;
}

/** Schedules of the no-op kind, target ids 1..n, no spread. */
export function noopSchedules(db: BenchDatabase, kind: string, n: number): (cron: string) => Promise<number> {
  return async (cron) => {
    await db.pool.query(
      `insert into ebb.schedules (kind, target_id, cron, timezone, dry_run, spread_seconds)
       select $1, g, $2, 'UTC', true, 0 from generate_series(1, $3::int) g`,
      [kind, cron, n],
    );
    return n;
  };
}

export async function runStorm(db: BenchDatabase, opts: StormOptions): Promise<StormResult> {
  // processes first (their start-up time must not eat into the lead), then the schedules
  const sampler = await startConnectionSampler(SERVER_URL, db.name);
  const children: EbbChild[] = [];
  const countsDir = mkdtempSync(path.join(tmpdir(), "ebb-storm-statements-"));
  const countFiles = Array.from({ length: opts.processes }, (_, p) => path.join(countsDir, `ebb-${p + 1}.json`));
  try {
    for (let p = 0; p < opts.processes; p++) {
      const roles = p === 0 ? "scheduler,worker" : "worker";
      children.push(
        startEbb(`ebb-${p + 1}`, [], {
          DATABASE_URL: db.url,
          EBB_ROLES: roles,
          EBB_POOL_SIZE: String(opts.poolSize),
          EBB_WORKER_CONCURRENCY: String(opts.workerConcurrency),
          EBB_MIGRATE: "false",
          EBB_LOG_LEVEL: "info",
          BENCH_STATEMENTS_FILE: countFiles[p],
          ...opts.env,
        }, STORM_PROCESS),
      );
    }
    await Promise.all(children.map((c) => c.waitForLog((l) => l.msg === "ebb ready", 120_000)));
    const { rows: nowRows } = await db.pool.query<{ now: Date }>("select now()");
    const slot = new Date(Math.ceil((nowRows[0]!.now.getTime() + opts.leadSeconds * 1000) / 1000) * 1000);
    const schedules = await opts.prepare(cronAt(slot));
    opts.log(`${schedules} schedules on "${cronAt(slot)}" UTC (slot ${slot.toISOString()}), ${opts.processes} process(es)`);
    // every schedule must know its next slot before the slot, or it would wait for tomorrow
    for (;;) {
      const { rows } = await db.pool.query<{ n: number; now: Date }>(
        "select count(*)::int as n, now() from ebb.schedules where next_slot is null",
      );
      if (rows[0]!.n === 0) break;
      if (rows[0]!.now.getTime() >= slot.getTime()) {
        throw new Error(`${rows[0]!.n} schedules still had no next slot at the slot time: raise leadSeconds`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    opts.log(`processes ready, schedules initialised; waiting for the slot`);
    await new Promise((r) => setTimeout(r, 250)); // the counters' files are rewritten every 200 ms
    const countsBefore = countFiles.map(readCounts);

    const deadline = Date.now() + opts.leadSeconds * 1000 + opts.timeoutMs;
    let finished = true;
    for (;;) {
      const { rows } = await db.pool.query<{ total: number; open: number }>(
        `select count(*)::int as total,
                count(*) filter (where status in ('pending', 'running'))::int as open
           from ebb.executions`,
      );
      const r = rows[0]!;
      if (r.total >= schedules && r.open === 0) break;
      if (Date.now() > deadline) {
        // report what was done by then rather than nothing (the bench must stay bounded)
        finished = false;
        opts.log(`not finished after ${opts.timeoutMs / 1000} s: ${r.total} executions, ${r.open} open; measuring progress`);
        break;
      }
      await new Promise((res) => setTimeout(res, 250));
    }
    const connections = await sampler.stop();
    await new Promise((r) => setTimeout(r, 250));
    const counted = countSince(countsBefore, countFiles);
    const peakRssPerProcess = Math.max(...children.map((c) => c.peakRss()));

    const { rows: ex } = await db.pool.query<{ status: string; n: number; first_start: Date; last_end: Date }>(
      `select status, count(*)::int as n, min(started_at) as first_start, max(ended_at) as last_end
         from ebb.executions group by status`,
    );
    const { rows: tk } = await db.pool.query<{ status: string; n: number; jobs: number; total: number }>(
      `select status, count(*)::int as n, count(distinct job_id)::int as jobs, coalesce(sum(total), 0)::int as total
         from ebb.tasks group by status`,
    );
    const executions = ex.reduce((a, r) => a + r.n, 0);
    const tasks = tk.reduce((a, r) => a + r.n, 0);
    const firstStart = Math.min(...ex.filter((r) => r.first_start).map((r) => r.first_start.getTime()));
    let seconds: number;
    let jobs: number;
    if (finished) {
      const lastEnd = Math.max(...ex.filter((r) => r.last_end).map((r) => r.last_end.getTime()));
      seconds = (lastEnd - slot.getTime()) / 1000;
      jobs = executions + tk.reduce((a, r) => a + r.jobs, 0);
    } else {
      // jobs done so far: planned executions + ended tasks, over the time since the slot
      const { rows: p } = await db.pool.query<{ planned: number; now: Date }>(
        "select count(*) filter (where planned)::int as planned, now() from ebb.executions",
      );
      seconds = (p[0]!.now.getTime() - slot.getTime()) / 1000;
      jobs = p[0]!.planned + tk.filter((r) => r.status !== "pending" && r.status !== "running").reduce((a, r) => a + r.n, 0);
    }
    return {
      finished,
      expectedExecutions: schedules,
      executions,
      executionStatus: Object.fromEntries(ex.map((r) => [r.status, r.n])),
      tasks,
      taskStatus: Object.fromEntries(tk.map((r) => [r.status, r.n])),
      jobs,
      artifacts: tk.reduce((a, r) => a + r.total, 0),
      firstStartSeconds: (firstStart - slot.getTime()) / 1000,
      seconds,
      jobsPerSecond: jobs / seconds,
      connections,
      configuredConnections: opts.poolSize * opts.processes,
      peakRssPerProcess,
      statements: counted.total,
      statementDetail: counted.statements,
    };
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await sampler.stop();
    rmSync(countsDir, { recursive: true, force: true });
  }
}
