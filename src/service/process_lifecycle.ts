import { isConnectionError } from "../db/database_outage.js";
import type { Logger } from "../log/logger.js";
import type { RunningService } from "./service.js";

/**
 * The process around a running service (`ebb start`): SIGTERM/SIGINT stop it gracefully
 * (exit 0); an uncaught exception or unhandled rejection is fatal: logged, the service
 * stopped, exit 1 - never a silent death with Node's own code - except a rejection that is a
 * lost database connection (see below). Resolves with the exit code.
 */
export async function runUntilStopped(service: RunningService, logger: Logger, shutdownTimeoutMs: number): Promise<number> {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => void service.stop(signal));
  }
  const fatal = (err: unknown) => {
    logger.fatal({ err }, "uncaught error: stopping");
    // should stopping itself hang, leave anyway (the jobs are released by crash recovery)
    setTimeout(() => process.exit(1), shutdownTimeoutMs + 5000).unref();
    void service.stop("uncaught error", 1);
  };
  process.on("uncaughtException", fatal);
  process.on("unhandledRejection", (err) => {
    // graphile-worker 0.17 does not await a job's completion/failure statement: when the
    // database connection dies under it (a PostgreSQL restart), the rejection lands here. The
    // database coming back is handled everywhere else; the job left locked is released by the
    // orphaned-job sweep (src/worker/orphaned_jobs.ts). Anything else is fatal.
    if (isConnectionError(err)) {
      logger.warn({ err: (err as Error).message }, "a database statement failed with the connection (not awaited by its caller): carrying on");
      return;
    }
    fatal(err);
  });
  return service.done;
}
