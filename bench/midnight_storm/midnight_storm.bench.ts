// "storm" (issues 5 and 8): the midnight storm. S daily schedules due at the same second,
// real ebb processes (1, 2, 4) draining them; compared with raw graphile-worker draining the
// same number of no-op jobs (graphile-worker's defaults, and ebb's batched-lane settings), in the same run.
//
// Workloads:
//  - framework: the bench's no-op execution kind (2 tasks per execution): what ebb's
//    bookkeeping (execution + task rows, status, counts, jobs in batches) costs per job;
//  - retention: the real retention kind in dry run over the seeded catalog (when available).
import type { Benchmark, ResultTable } from "../support/benchmark.js";
import { mib } from "../support/memory_sampler.js";
import { fmtCount, fmtRate, fmtRatio, fmtSeconds } from "../support/report.js";
import { runGraphileNoop, type NoopResult } from "../graphile_noop/graphile_noop.js";
import { NOOP_KIND, TASKS_PER_EXECUTION } from "./noop_kind.js";
import { seedPolicies } from "../support/seed_policies.js";
import { installStatementCounter, statementsBetween } from "../support/statement_counter.js";
import { noopSchedules, runStorm, type StormResult } from "./storm_run.js";
import { EBB_DEFAULTS } from "../support/ebb_defaults.js";

const EBB_LOCAL_QUEUE_SIZE = EBB_DEFAULTS.workerLocalQueueSize;

const POOL_SIZE = EBB_DEFAULTS.poolSize;
const CONCURRENCY = EBB_DEFAULTS.workerConcurrency;
const TARGET_RATIO = 0.5;
/** a retention storm still running after this is reported as failed (keeps the run bounded) */
const RETENTION_TIMEOUT_MS = 4 * 60_000;

function statusText(s: Record<string, number>): string {
  return Object.entries(s)
    .map(([k, v]) => `${k} ${fmtCount(v)}`)
    .join(", ");
}

export const midnightStormBenchmark: Benchmark = {
  name: "storm",
  description: "midnight storm: 10,000 daily schedules due at the same second, 1/2/4 ebb processes, vs raw graphile-worker",
  async run(ctx) {
    const full = ctx.scale === "full";
    // BENCH_STORM_SCHEDULES=n overrides the count (development)
    const schedules = Number(process.env.BENCH_STORM_SCHEDULES) || (full ? 10_000 : 60);
    // BENCH_STORM_PROCESSES=1,2 narrows the process counts (development)
    const processCounts = process.env.BENCH_STORM_PROCESSES
      ? process.env.BENCH_STORM_PROCESSES.split(",").map(Number)
      : full ? [1, 2, 4] : [1];
    const lead = full ? 10 : 5;
    // the job count a finished storm runs: one plan job per execution + one job per task
    const jobs = schedules * (1 + TASKS_PER_EXECUTION);
    // two peers: graphile-worker as it comes (the target's peer), and graphile-worker with the
    // settings of ebb's batched lane, which runs the storm's jobs (src/worker/runner.ts)
    const runPeer = async (mode: "plain" | "batched") => {
      const peerDb = await ctx.freshDatabase("storm_peer");
      ctx.log(`raw graphile-worker peer (${mode}): ${jobs} no-op jobs ...`);
      // the peer runs in this process: its statements are counted here, the connection
      // sampler's own (pg_stat_activity) left out
      const countStatements = installStatementCounter();
      const before = countStatements();
      const result: NoopResult = await runGraphileNoop(peerDb.url, peerDb.name, { jobs, concurrency: CONCURRENCY, poolSize: POOL_SIZE, mode });
      const statements = statementsBetween(before, countStatements(), /pg_stat_activity|pg_database|create database|drop database/i);
      await peerDb.drop();
      return { result, statementsPerJob: statements / result.jobs };
    };
    const plainBefore = await runPeer("plain");
    const results: { label: string; processes: number; r: StormResult }[] = [];
    const failures: string[][] = [];
    for (const processes of processCounts) {
      const db = await ctx.freshDatabase(`storm_noop_${processes}`);
      try {
        await db.pool.query("insert into ebb.execution_kinds (name) values ($1) on conflict do nothing", [NOOP_KIND]);
        const r = await runStorm(db, {
          prepare: noopSchedules(db, NOOP_KIND, schedules),
          processes,
          poolSize: POOL_SIZE,
          workerConcurrency: CONCURRENCY,
          leadSeconds: lead,
          timeoutMs: 5 * 60_000,
          log: ctx.log,
        });
        ctx.log(`framework, ${processes} process(es): ${fmtSeconds(r.seconds)} s, ${fmtRate(r.jobsPerSecond)} jobs/s, peak ebb connections ${r.connections.ebbTotal}/${r.configuredConnections}`);
        results.push({ label: "framework (no-op kind)", processes, r });
      } catch (err) {
        ctx.log(`framework, ${processes} process(es) FAILED: ${(err as Error).message}`);
        failures.push(["framework (no-op kind)", String(processes), `FAILED: ${(err as Error).message.split("\n")[0]}`]);
      } finally {
        await db.drop();
      }
    }
    // the real thing: retention policies (dry run) over the seeded catalog, one project each
    const retentionCounts = process.env.BENCH_STORM_RETENTION_PROCESSES
      ? process.env.BENCH_STORM_RETENTION_PROCESSES.split(",").filter(Boolean).map(Number)
      : [1];
    for (const processes of retentionCounts) {
      const db = await ctx.seededDatabase(`storm_ret_${processes}`, { repositories: schedules * 2, artifactsPerRepository: 50 });
      try {
        const r = await runStorm(db, {
          prepare: async (cron) =>
            (await seedPolicies(db.pool, { registryId: Number(db.seed.registryId), count: schedules, scope: "project", cron, dryRun: true })).length,
          processes,
          poolSize: POOL_SIZE,
          workerConcurrency: CONCURRENCY,
          // the policies' trigger writes 10,000 schedules with no next slot: the scheduler
          // initialises them before the slot (10 s was too short on a loaded machine once)
          leadSeconds: 3 * lead,
          timeoutMs: RETENTION_TIMEOUT_MS,
          log: ctx.log,
        });
        ctx.log(`retention, ${processes} process(es): ${fmtSeconds(r.seconds)} s, ${fmtRate(r.jobsPerSecond)} jobs/s, ${r.artifacts} artifacts, peak ebb connections ${r.connections.ebbTotal}/${r.configuredConnections}`);
        results.push({ label: "retention, dry run (decision rows written)", processes, r });
      } catch (err) {
        ctx.log(`retention, ${processes} process(es) FAILED: ${(err as Error).message}`);
        failures.push(["retention, dry run", String(processes), `FAILED: ${(err as Error).message.split("\n")[0]}`]);
      } finally {
        await db.drop();
      }
    }
    if (results.length === 0) throw new Error(`every storm failed: ${failures.map((f) => f[2]).join("; ")}`);

    const plainAfter = await runPeer("plain");
    const { result: batchedPeer, statementsPerJob: batchedPeerStatementsPerJob } = await runPeer("batched");
    // the ratio's peer: the faster of the two defaults runs (the server's state after ebb's
    // storms - WAL, checkpoints, autovacuum - can slow a peer run after them: taking the faster
    // one never favours ebb)
    const { result: peer } =
      plainBefore.result.jobsPerSecond >= plainAfter.result.jobsPerSecond ? plainBefore : plainAfter;

    const rows = results.map(({ label, processes, r }) => [
      r.finished ? label : `${label} - NOT FINISHED after ${fmtSeconds(r.seconds)} s: progress so far`,
      processes,
      r.finished ? fmtCount(r.executions) : `${statusText(r.executionStatus)} of ${fmtCount(r.expectedExecutions)}`,
      r.finished ? fmtCount(r.tasks) : statusText(r.taskStatus),
      fmtCount(r.jobs),
      label.startsWith("framework") ? "-" : fmtCount(r.artifacts),
      fmtSeconds(r.firstStartSeconds),
      fmtSeconds(r.seconds),
      fmtRate(r.jobsPerSecond),
      `${r.connections.ebbTotal} / ${r.configuredConnections}`,
      mib(r.peakRssPerProcess),
      (r.statements / r.jobs).toFixed(1),
      fmtRatio(r.jobsPerSecond / peer.jobsPerSecond),
    ]);
    for (const f of failures) rows.push([f[0]!, f[1]!, f[2]!, "", "", "", "", "", "", "", "", "", ""]);
    const peerRow = (label: string, r: NoopResult, statementsPerJob: number) => [
      label, 1, "", "", fmtCount(r.jobs), "", "", fmtSeconds(r.drainSeconds), fmtRate(r.jobsPerSecond),
      `${r.connections.ebbTotal} / ${POOL_SIZE}`, "", statementsPerJob.toFixed(1), fmtRatio(r.jobsPerSecond / peer.jobsPerSecond),
    ];
    rows.push(peerRow("peer: raw graphile-worker, defaults, no-op jobs (burn-down), run before ebb's rows", plainBefore.result, plainBefore.statementsPerJob));
    rows.push(peerRow("peer: raw graphile-worker, defaults, no-op jobs (burn-down), run after ebb's rows", plainAfter.result, plainAfter.statementsPerJob));
    rows.push(peerRow(`raw graphile-worker with ebb's batched-lane settings (localQueue ${EBB_LOCAL_QUEUE_SIZE}, batched completion), no-op jobs`, batchedPeer, batchedPeerStatementsPerJob));
    const one = results[0]!.r;
    const notes = [
      `every row: pool ${POOL_SIZE} and worker concurrency ${CONCURRENCY} per process; process 1 runs scheduler + worker, the others worker only; the no-op kind plans ${TASKS_PER_EXECUTION} tasks per execution, retention one per repository of the policy's project (2); spread 0 (all due at the same second).`,
      `time = from the nominal cron slot to the last execution's ended_at (database clock); jobs = one plan job per execution + one job per task.`,
      `executions: ${statusText(one.executionStatus)}; tasks: ${statusText(one.taskStatus)} (1 process).`,
      `a NOT FINISHED row was stopped at its timeout (${RETENTION_TIMEOUT_MS / 60_000} min for retention) to keep the run bounded: its jobs/s is jobs done so far (planned executions + ended tasks) over the time since the slot.`,
      `connections never above the configured pool: ${results.every(({ r }) => r.connections.ebbTotal <= r.configuredConnections) ? "held in every row" : "EXCEEDED in some row"}.`,
      ...results
        .filter((x) => x.processes === 1)
        .map(({ label, r }) => {
          const ratio = r.jobsPerSecond / peer.jobsPerSecond;
          // The target compares ebb's jobs with their history bookkeeping to raw no-op jobs:
          // the framework row. A retention job does real work besides (reads ~50 artifacts,
          // decides, writes ~50 decision rows); its ratio is reported, not held to the target.
          return label.startsWith("framework")
            ? `target (issue 5): ebb's jobs with full history bookkeeping (${label}, 1 process) >= ${TARGET_RATIO}x raw graphile-worker's no-op jobs: ${fmtRatio(ratio)} - ${ratio >= TARGET_RATIO ? "met" : "MISSED"}.`
            : `${label}, 1 process: ${fmtRatio(ratio)} of raw graphile-worker's no-op jobs - each job also reads ~50 artifacts, decides and writes ~50 decision rows (the retention work of issue 4), so this is the storm's real throughput, not the bookkeeping target's measure.`;
        }),
      `the ratio's peer is the faster of the two runs of raw graphile-worker with its defaults, before and after ebb's rows (${fmtRate(peer.jobsPerSecond)} jobs/s); the peer is single-process; rows with more processes compare against it as well.`,
      `the storm's jobs (plan jobs, ungrouped tasks) run in ebb's batched lane (localQueue ${EBB_LOCAL_QUEUE_SIZE}, batched completion); raw graphile-worker with those same settings ran ${fmtRate(batchedPeer.jobsPerSecond)} jobs/s: ebb framework, 1 process = ${fmtRatio((results.find((x) => x.processes === 1)?.r.jobsPerSecond ?? 0) / batchedPeer.jobsPerSecond)} of that.`,
      "SQL statements/job: every statement the ebb processes sent from just before the slot to the end (graphile-worker's own included; BEGIN/COMMIT count), over the jobs - a count, unaffected by machine load, where jobs/s is not.",
      ...results
        .filter((x) => x.processes === 1)
        .map(({ label, r }) => `${label}, 1 process, statements by client-side time (round trip included): ${r.statementDetail.slice(0, 8).map((x) => `${x.count} x ${x.sql.slice(0, 60)} (${(x.ms / x.count).toFixed(2)} ms each)`).join("; ")}.`),
    ];
    const tables: ResultTable[] = [
      {
        title: `midnight storm: ${fmtCount(schedules)} daily schedules due at the same second`,
        head: ["workload", "processes", "executions", "tasks", "jobs", "artifacts evaluated", "first start s", "slot -> all done s", "jobs/s", "peak ebb conns / pool", "peak RSS/process", "SQL statements/job", "vs raw graphile"],
        rows,
        notes,
      },
    ];
    return tables;
  },
};
