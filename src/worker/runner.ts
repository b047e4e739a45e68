import { run, type Runner } from "graphile-worker";
import { WORKER_SCHEMA } from "../db/migrate.js";
import type { AppContext } from "../service/context.js";
import { graphileLogger } from "./graphile_logger.js";
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
export async function startWorker(ctx: AppContext, onFatal: (err: unknown) => void): Promise<WorkerRole> {
  const runner = await run({
    pgPool: ctx.pool,
    schema: WORKER_SCHEMA,
    concurrency: ctx.config.workerConcurrency,
    noHandleSignals: true,
    pollInterval: 1000,
    crontab: "", // ebb schedules from its own tables, not a crontab file
    taskList: buildTaskList(ctx),
    logger: graphileLogger(ctx.logger),
  });
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
    },
  };
}
