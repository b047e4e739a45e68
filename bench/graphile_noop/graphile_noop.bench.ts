// "graphile-noop": the raw queue baseline the midnight storm is compared with. Same pool size
// and concurrency as ebb's defaults (bench/support/ebb_defaults.ts), plus graphile-worker's batched
// fast path (localQueue + batched completion) to show the ceiling.
import type { Benchmark } from "../support/benchmark.js";
import { fmtCount, fmtRate, fmtSeconds } from "../support/report.js";
import { runGraphileNoop, type NoopResult } from "./graphile_noop.js";
import { EBB_DEFAULTS } from "../support/ebb_defaults.js";

const EBB_LOCAL_QUEUE_SIZE = EBB_DEFAULTS.workerLocalQueueSize;

const POOL_SIZE = EBB_DEFAULTS.poolSize;
const CONCURRENCY = EBB_DEFAULTS.workerConcurrency;

export const graphileNoopBenchmark: Benchmark = {
  name: "graphile-noop",
  description: "raw graphile-worker: N no-op jobs added with add_jobs in batches, drained by run() on one pool",
  async run(ctx) {
    const jobs = ctx.scale === "full" ? 30_000 : 2_000;
    const rows: (string | number)[][] = [];
    const row = (label: string, concurrency: number, r: NoopResult) => [
      label,
      fmtCount(r.jobs),
      concurrency,
      POOL_SIZE,
      fmtSeconds(r.addSeconds),
      fmtSeconds(r.drainSeconds),
      fmtRate(r.jobsPerSecond),
      r.connections.ebbTotal,
    ];
    for (const variant of [
      { label: "run(), defaults", concurrency: CONCURRENCY, mode: "plain" as const },
      { label: "run(), ebb's one-by-one lane settings (each completion written at once)", concurrency: CONCURRENCY, mode: "one-by-one" as const },
      { label: `run(), ebb's batched lane settings (localQueue ${EBB_LOCAL_QUEUE_SIZE} + immediate batched completion)`, concurrency: CONCURRENCY, mode: "batched" as const },
      { label: "run(), localQueue 100 + immediate batched completion", concurrency: CONCURRENCY, mode: "fast" as const },
      { label: "run(), defaults, concurrency 9", concurrency: POOL_SIZE - 1, mode: "plain" as const },
    ]) {
      const db = await ctx.freshDatabase("noop");
      ctx.log(`${variant.label}: ${jobs} jobs ...`);
      const r = await runGraphileNoop(db.url, db.name, { jobs, concurrency: variant.concurrency, poolSize: POOL_SIZE, mode: variant.mode });
      rows.push(row(variant.label, variant.concurrency, r));
      await db.drop();
    }
    return [
      {
        title: `graphile-worker ${"0.17"} no-op jobs (burn-down: all added first, then drained)`,
        head: ["variant", "jobs", "concurrency", "pool", "add s", "drain s", "jobs/s", "peak connections"],
        rows,
        notes: [
          "add = addJobs (SQL add_jobs) in batches of 1,000; drain = run() start until the queue is empty.",
          "This is the queue's own ceiling: no-op handlers, no history rows. The midnight storm reruns the defaults (its ratio's peer) and ebb's batched-lane variants with its own job count in the same run.",
        ],
      },
    ];
  },
};
