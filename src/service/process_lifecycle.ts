import type { Logger } from "../log/logger.js";
import type { RunningService } from "./service.js";

/**
 * The process around a running service (`ebb start`): SIGTERM/SIGINT stop it gracefully
 * (exit 0); an uncaught exception or unhandled rejection (e.g. inside graphile-worker when
 * the database goes away mid-job) is fatal: logged, the service stopped, exit 1 - never a
 * silent death with Node's own code. Resolves with the exit code.
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
  process.on("unhandledRejection", fatal);
  return service.done;
}
