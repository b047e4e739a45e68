import { EventEmitter } from "node:events";
import { run, type Runner, type WorkerEvents } from "graphile-worker";
import { WORKER_SCHEMA } from "../db/migrate.js";
import { Heartbeat } from "../executions/heartbeat.js";
import type { KindMap } from "../executions/kind.js";
import type { AppContext } from "../service/context.js";
import { graphileLogger } from "./graphile_logger.js";
import { withoutListen } from "./listenless_pool.js";
import { OrphanedJobSweeper } from "./orphaned_jobs.js";
import { buildTaskList } from "./task_list.js";

export interface WorkerRole {
  runner: Runner;
  /** Stop claiming; let running jobs finish for up to timeoutMs, then release the rest. */
  stop(timeoutMs: number): Promise<void>;
}

/**
 * The worker role: graphile-worker on the process pool (pgPool: no second pool), signals
 * handled by ebb. A dead pool ends the runner's promise *resolved* in 0.17, so fatal errors
 * are taken from the events and passed to onFatal.
 */
export async function startWorker(ctx: AppContext, onFatal: (err: unknown) => void, kinds: KindMap = new Map()): Promise<WorkerRole> {
  // Heartbeat per worker pool (jobs are locked by the pool's id in 0.17): crash recovery
  // releases the jobs of a pool whose heartbeat stops (src/executions/recovery.ts).
  const events: WorkerEvents = new EventEmitter();
  const heartbeats: Promise<Heartbeat>[] = [];
  // Jobs whose completion or failure graphile-worker lost to a dropped connection stay locked
  // by this live pool: released again after a while (orphaned_jobs.ts).
  const sweeper = new OrphanedJobSweeper(ctx.pool, events, {
    minAgeMs: Math.max(5_000, 3 * ctx.config.heartbeatIntervalMs),
    everyMs: ctx.config.heartbeatIntervalMs,
    onReleased: (jobIds) => ctx.logger.warn({ jobIds }, "released jobs this process had locked but no longer ran (their completion or failure was lost with a database connection): they run again"),
    onError: (err) => ctx.logger.warn({ err: (err as Error).message }, "orphaned job sweep failed"),
  });
  events.on("pool:create", ({ workerPool }) => {
    const hb = new Heartbeat(ctx.pool, workerPool.id, ctx.config.heartbeatIntervalMs, (err) =>
      ctx.logger.warn({ err: (err as Error).message }, "worker heartbeat failed"));
    heartbeats.push(hb.start().then(() => hb));
    sweeper.start(workerPool.id);
  });
  // Behind PgBouncer in transaction mode (README "Scale-out and PgBouncer"): no named
  // prepared statements (a statement prepared on one server connection is unknown on the
  // next) and no LISTEN (see listenless_pool.ts); idle workers poll instead.
  const transactionPooling = ctx.config.databasePooling === "transaction";
  if (transactionPooling) {
    ctx.logger.info({ pollIntervalMs: ctx.config.workerPollIntervalMs },
      "transaction pooling: worker polls for jobs, no LISTEN, no prepared statements");
  }
  const runner = await run({
    events,
    pgPool: transactionPooling ? withoutListen(ctx.pool) : ctx.pool,
    noPreparedStatements: transactionPooling,
    schema: WORKER_SCHEMA,
    concurrency: ctx.config.workerConcurrency,
    noHandleSignals: true,
    pollInterval: ctx.config.workerPollIntervalMs,
    crontab: "", // ebb schedules from its own tables, not a crontab file
    taskList: buildTaskList(ctx, kinds),
    logger: graphileLogger(ctx.logger),
    preset: {
      worker: {
        // Complete/fail each job at once, not in batches: a named queue (ebb's per-group
        // concurrency limit, plan_job.ts) stays locked until its job's completion is written,
        // so batching completions kept the worker that just finished from taking the next job
        // of the same queue, and it idled until the next poll (bench: 6 -> 44-59 jobs/s with
        // grouped tasks, BENCHMARKS.md).
        // No localQueue: in 0.17 a batched fetch can take several jobs of ONE named queue
        // at once (getJobs locks the queue after choosing the jobs), which breaks the
        // per-group concurrency limit built on named queues (plan_job.ts). Tested in
        // test/executions/lifecycle.test.ts.
        completeJobBatchDelay: -1,
        failJobBatchDelay: -1,
      },
    },
  });
  const heartbeatList = await Promise.all(heartbeats);
  runner.events.on("pool:fatalError", ({ error }) => onFatal(error));
  runner.events.on("worker:fatalError", ({ error }) => onFatal(error));
  let stopping = false;
  // The runner only ends by itself when its pool gave up: that is fatal for the process.
  runner.promise.then(
    () => !stopping && onFatal(new Error("graphile-worker runner stopped by itself (database pool died)")),
    (err: unknown) => !stopping && onFatal(err),
  );
  return {
    runner,
    async stop(timeoutMs) {
      stopping = true;
      let timer: NodeJS.Timeout | undefined;
      const graceful = runner.stop("ebb shutting down").then(() => "stopped" as const);
      const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
      const outcome = await Promise.race([graceful, timeout]);
      clearTimeout(timer);
      if (outcome === "timeout") {
        ctx.logger.warn({ timeoutMs }, "jobs still running after the shutdown timeout: releasing them");
        await runner.kill("ebb shutdown timeout").catch(() => {});
      }
      await sweeper.stop();
      // Only now: a heartbeat removed while jobs still ran would let recovery re-run them.
      await Promise.all(heartbeatList.map((hb) => hb.stop()));
    },
  };
}
