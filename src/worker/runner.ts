import { EventEmitter } from "node:events";
import { run, type Runner, type TaskList, type WorkerEvents } from "graphile-worker";
import type pg from "pg";
import { WORKER_SCHEMA } from "../db/migrate.js";
import { Heartbeat } from "../executions/heartbeat.js";
import type { KindMap } from "../executions/kind.js";
import type { AppContext } from "../service/context.js";
import { graphileLogger } from "./graphile_logger.js";
import { JobSlots } from "./job_slots.js";
import { sharedListen, withoutListen } from "./listenless_pool.js";
import { OrphanedJobSweeper } from "./orphaned_jobs.js";
import { buildTaskLists } from "./task_list.js";

export interface WorkerRole {
  /** the two lanes: batched, one by one */
  runners: Runner[];
  /** Stop claiming; let running jobs finish for up to timeoutMs, then release the rest. */
  stop(timeoutMs: number): Promise<void>;
}

/**
 * The worker role: graphile-worker on the process pool (pgPool: no second pool), signals
 * handled by ebb. A dead pool ends the runner's promise *resolved* in 0.17, so fatal errors
 * are taken from the events and passed to onFatal.
 *
 * Two lanes, each a graphile-worker runner (its own worker pool, heartbeat and sweep) on the
 * same pg.Pool and the same single LISTEN connection (listenless_pool.ts):
 *  - batched: plan jobs and tasks without a group, fetched `workerLocalQueueSize` at a time
 *    (localQueue) and completed in batches: one fetch and one completion statement per batch
 *    instead of two statements per job (the midnight storm's main cost, BENCHMARKS.md);
 *  - one by one: tasks with a group (a registry's deletions, syncs), each in its group's named
 *    queue. graphile-worker 0.17's batch fetch takes several jobs of one named queue at once
 *    (graphile/worker#621) and a named queue stays locked until its job's completion is
 *    written, so these are fetched and completed one at a time (bench: batching their
 *    completions took grouped tasks from 44-59 to 6 jobs/s).
 * Both have `workerConcurrency` workers; JobSlots keeps the handlers running at once in the
 * process at `workerConcurrency` in all.
 */
export async function startWorker(ctx: AppContext, onFatal: (err: unknown) => void, kinds: KindMap = new Map()): Promise<WorkerRole> {
  const heartbeats: Promise<Heartbeat>[] = [];
  const sweepers: OrphanedJobSweeper[] = [];
  // Behind PgBouncer in transaction mode (README "Scale-out and PgBouncer"): no named
  // prepared statements (a statement prepared on one server connection is unknown on the
  // next) and no LISTEN (see listenless_pool.ts); idle workers poll instead.
  const transactionPooling = ctx.config.databasePooling === "transaction";
  if (transactionPooling) {
    ctx.logger.info({ pollIntervalMs: ctx.config.workerPollIntervalMs },
      "transaction pooling: worker polls for jobs, no LISTEN, no prepared statements");
  }
  const pools = transactionPooling
    ? { listening: withoutListen(ctx.pool), relayed: withoutListen(ctx.pool) }
    : sharedListen(ctx.pool);
  const lists = buildTaskLists(ctx, kinds, new JobSlots(ctx.config.workerConcurrency));

  const startLane = async (lane: string, pgPool: pg.Pool, taskList: TaskList, worker: GraphileConfig.WorkerOptions, preparedStatements: boolean): Promise<Runner> => {
    // Heartbeat per worker pool (jobs are locked by the pool's id in 0.17): crash recovery
    // releases the jobs of a pool whose heartbeat stops (src/executions/recovery.ts).
    const events: WorkerEvents = new EventEmitter();
    // Jobs whose completion or failure graphile-worker lost to a dropped connection stay
    // locked by this live pool: released again after a while (orphaned_jobs.ts).
    const sweeper = new OrphanedJobSweeper(ctx.pool, events, {
      minAgeMs: Math.max(5_000, 3 * ctx.config.heartbeatIntervalMs),
      everyMs: ctx.config.heartbeatIntervalMs,
      onReleased: (jobIds) => ctx.logger.warn({ jobIds, lane }, "released jobs this process had locked but no longer ran (their completion or failure was lost with a database connection): they run again"),
      onError: (err) => ctx.logger.warn({ err: (err as Error).message, lane }, "orphaned job sweep failed"),
    });
    sweepers.push(sweeper);
    events.on("pool:create", ({ workerPool }) => {
      const hb = new Heartbeat(ctx.pool, workerPool.id, ctx.config.heartbeatIntervalMs, (err) =>
        ctx.logger.warn({ err: (err as Error).message, lane }, "worker heartbeat failed"));
      heartbeats.push(hb.start().then(() => hb));
      sweeper.start(workerPool.id);
    });
    return run({
      events,
      pgPool,
      noPreparedStatements: transactionPooling || !preparedStatements,
      schema: WORKER_SCHEMA,
      concurrency: ctx.config.workerConcurrency,
      noHandleSignals: true,
      pollInterval: ctx.config.workerPollIntervalMs,
      crontab: "", // ebb schedules from its own tables, not a crontab file
      taskList,
      logger: graphileLogger(ctx.logger),
      preset: { worker },
    });
  };
  const oneByOneLane = { completeJobBatchDelay: -1, failJobBatchDelay: -1 };
  const batchedLane = ctx.config.workerLocalQueueSize > 1
    ? { localQueue: { size: ctx.config.workerLocalQueueSize }, completeJobBatchDelay: 0, failJobBatchDelay: 0 }
    : oneByOneLane;
  const runners = [
    // Unprepared: graphile-worker's batch fetch filters on `is_available = $3`; a generic
    // plan of the prepared statement (PostgreSQL may switch to one after 5 runs) cannot use
    // the partial index on available jobs (`where is_available = true`) and scans and sorts
    // the whole queue. An unnamed statement is planned with its parameters each time (about
    // 0.3 ms of planning per fetch of up to workerLocalQueueSize jobs).
    await startLane("batched", pools.listening, lists.batched, batchedLane, false),
    // Tested in test/executions/lifecycle.test.ts (per-group limit).
    await startLane("one by one", pools.relayed, lists.oneByOne, oneByOneLane, true),
  ];
  const heartbeatList = await Promise.all(heartbeats);
  let stopping = false;
  for (const runner of runners) {
    runner.events.on("pool:fatalError", ({ error }) => onFatal(error));
    runner.events.on("worker:fatalError", ({ error }) => onFatal(error));
    // A runner only ends by itself when its pool gave up: that is fatal for the process.
    runner.promise.then(
      () => !stopping && onFatal(new Error("graphile-worker runner stopped by itself (database pool died)")),
      (err: unknown) => !stopping && onFatal(err),
    );
  }
  return {
    runners,
    async stop(timeoutMs) {
      stopping = true;
      let timer: NodeJS.Timeout | undefined;
      const graceful = Promise.all(runners.map((r) => r.stop("ebb shutting down"))).then(() => "stopped" as const);
      const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
      const outcome = await Promise.race([graceful, timeout]);
      clearTimeout(timer);
      if (outcome === "timeout") {
        ctx.logger.warn({ timeoutMs }, "jobs still running after the shutdown timeout: releasing them");
        await Promise.all(runners.map((r) => r.kill("ebb shutdown timeout").catch(() => {})));
      }
      await Promise.all(sweepers.map((s) => s.stop()));
      // Only now: a heartbeat removed while jobs still ran would let recovery re-run them.
      await Promise.all(heartbeatList.map((hb) => hb.stop()));
    },
  };
}
