// Raw graphile-worker throughput on ebb's database layout: N no-op jobs added with add_jobs in
// batches (one NOTIFY per batch), then drained by graphile-worker run() on ONE pg.Pool - the
// peer ebb's job throughput is measured against. Nothing of ebb runs here: no history rows,
// no tasks, no decisions; it is the ceiling of the queue itself on this machine.
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import pg from "pg";
import { WORKER_SCHEMA } from "../../src/db/migrate.js";
import { startConnectionSampler, type ConnectionPeaks } from "../support/connection_sampler.js";
import { SERVER_URL } from "../support/bench_database.js";
import { EBB_DEFAULTS } from "../support/ebb_defaults.js";

export interface NoopOptions {
  jobs: number;
  /** jobs run at once (ebb's workerConcurrency) */
  concurrency: number;
  /** size of the one pool (ebb's poolSize) */
  poolSize: number;
  /** add_jobs batch size */
  batchSize?: number;
  /**
   * plain: graphile-worker defaults; one-by-one: ebb's one-by-one lane (src/worker/runner.ts:
   * no localQueue, each completion written at once); batched: ebb's batched lane (localQueue of
   * ebb's default workerLocalQueueSize, completions batched without delay); fast: localQueue
   * 100 + the same batched completion (graphile-worker's fast path).
   */
  mode?: NoopMode;
  applicationName?: string;
}

export type NoopMode = "plain" | "one-by-one" | "batched" | "fast";

const EBB_LOCAL_QUEUE_SIZE = EBB_DEFAULTS.workerLocalQueueSize;

function workerPreset(mode: NoopMode) {
  // as src/worker/runner.ts
  if (mode === "one-by-one") return { completeJobBatchDelay: -1, failJobBatchDelay: -1 };
  if (mode === "batched") return { localQueue: { size: EBB_LOCAL_QUEUE_SIZE }, completeJobBatchDelay: 0, failJobBatchDelay: 0 };
  if (mode === "fast") return { localQueue: { size: 100 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 };
  return {};
}

export interface NoopResult {
  jobs: number;
  addSeconds: number;
  drainSeconds: number;
  jobsPerSecond: number;
  connections: ConnectionPeaks;
}

const silent = new Logger(() => () => {});

export async function runGraphileNoop(url: string, database: string, opts: NoopOptions): Promise<NoopResult> {
  const batchSize = opts.batchSize ?? 1000;
  const appName = opts.applicationName ?? "bench:graphile";
  const pool = new pg.Pool({ connectionString: url, max: opts.poolSize, application_name: appName });
  pool.on("error", () => {});
  pool.on("connect", (c) => c.on("error", () => {}));
  const sampler = await startConnectionSampler(SERVER_URL, database, { ebbPattern: new RegExp(`^${appName}$`) });
  try {
    const utils = await makeWorkerUtils({ pgPool: pool, schema: WORKER_SCHEMA, logger: silent });
    const addStarted = performance.now();
    for (let added = 0; added < opts.jobs; added += batchSize) {
      const n = Math.min(batchSize, opts.jobs - added);
      await utils.addJobs(Array.from({ length: n }, (_, k) => ({ identifier: "noop", payload: { n: added + k } })));
    }
    const addSeconds = (performance.now() - addStarted) / 1000;
    await utils.release();

    let done = 0;
    let resolveDrained!: () => void;
    const drained = new Promise<void>((r) => (resolveDrained = r));
    const drainStarted = performance.now();
    const runner = await run({
      pgPool: pool,
      schema: WORKER_SCHEMA,
      concurrency: opts.concurrency,
      noHandleSignals: true,
      pollInterval: 1000,
      crontab: "",
      logger: silent,
      taskList: {
        noop: async () => {
          if (++done === opts.jobs) resolveDrained();
        },
      },
      preset: { worker: workerPreset(opts.mode ?? "plain") },
    });
    await drained;
    await runner.stop();
    // the last completions may have been batched: the queue must be empty now
    // a batched completion can land just after stop() resolves: give it a moment
    let left = await pool.query<{ n: number }>(`select count(*)::int as n from ${WORKER_SCHEMA}._private_jobs`);
    for (let i = 0; i < 20 && left.rows[0]!.n !== 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      left = await pool.query<{ n: number }>(`select count(*)::int as n from ${WORKER_SCHEMA}._private_jobs`);
    }
    const drainSeconds = (performance.now() - drainStarted) / 1000;
    if (left.rows[0]!.n !== 0) throw new Error(`${left.rows[0]!.n} jobs left in the queue after the drain`);
    return { jobs: opts.jobs, addSeconds, drainSeconds, jobsPerSecond: opts.jobs / drainSeconds, connections: await sampler.stop() };
  } finally {
    await sampler.stop();
    await pool.end();
  }
}
