import type { Runner } from "graphile-worker";
import type { KindMap } from "../executions/kind.js";
import { withStopListen } from "../executions/stop.js";
import type { AppContext } from "../service/context.js";
import { JobSlots } from "./job_slots.js";
import { sharedListen, withoutListen } from "./listenless_pool.js";
import { buildTaskLists } from "./task_list.js";
import { WorkerLane } from "./worker_lane.js";

export interface WorkerRole {
  /** the two lanes' current runners: batched, one by one (a lane restarted after its pool died has a new one) */
  readonly runners: Runner[];
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
    : sharedListen(withStopListen(ctx.pool)); // the one LISTEN connection also hears stop requests
  const lists = buildTaskLists(ctx, kinds, new JobSlots(ctx.config.workerConcurrency));

  const oneByOneLane = { completeJobBatchDelay: -1, failJobBatchDelay: -1 };
  const batchedLane = ctx.config.workerLocalQueueSize > 1
    ? { localQueue: { size: ctx.config.workerLocalQueueSize }, completeJobBatchDelay: 0, failJobBatchDelay: 0 }
    : oneByOneLane;
  const lanes = [
    // Unprepared: graphile-worker's batch fetch filters on `is_available = $3`; a generic
    // plan of the prepared statement (PostgreSQL may switch to one after 5 runs) cannot use
    // the partial index on available jobs (`where is_available = true`) and scans and sorts
    // the whole queue. An unnamed statement is planned with its parameters each time (about
    // 0.3 ms of planning per fetch of up to workerLocalQueueSize jobs).
    new WorkerLane(ctx, { name: "batched", pgPool: pools.listening, taskList: lists.batched, worker: batchedLane, preparedStatements: false }, onFatal),
    // Tested in test/executions/lifecycle.test.ts (per-group limit).
    new WorkerLane(ctx, { name: "one by one", pgPool: pools.relayed, taskList: lists.oneByOne, worker: oneByOneLane, preparedStatements: true }, onFatal),
  ];
  for (const lane of lanes) await lane.start();
  return {
    get runners() {
      return lanes.map((l) => l.current);
    },
    async stop(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const graceful = Promise.all(lanes.map((l) => l.stopRunner("ebb shutting down").catch(() => {}))).then(() => "stopped" as const);
      const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
      const outcome = await Promise.race([graceful, timeout]);
      clearTimeout(timer);
      if (outcome === "timeout") {
        ctx.logger.warn({ timeoutMs }, "jobs still running after the shutdown timeout: releasing them");
        await Promise.all(lanes.map((l) => l.killRunner("ebb shutdown timeout").catch(() => {})));
      }
      // Only now: a heartbeat removed while jobs still ran would let recovery re-run them.
      await Promise.all(lanes.map((l) => l.stopBookkeeping()));
    },
  };
}
