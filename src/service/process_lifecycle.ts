import { isConnectionError } from "../db/database_outage.js";
import { DatabaseUnavailableError } from "../db/database_weather.js";
import type { Logger } from "../log/logger.js";
import { StartupAborted, type RunningService } from "./service.js";

/**
 * The whole life of an `ebb start` process, startup included: SIGTERM/SIGINT are honoured
 * from the first moment - during startup (also while it waits for the database) they abort
 * it and the process exits 0; once running they stop the service gracefully (exit 0). A
 * database that stays unavailable past databaseWaitMs at startup ends the process with exit
 * 1 and the reason. Resolves with the exit code.
 */
export async function runProcess(start: (signal: AbortSignal) => Promise<RunningService>, logger: Logger, shutdownTimeoutMs: number): Promise<number> {
  const startup = new AbortController();
  let service: RunningService | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (service) return void stopOnSignal(service, signal, logger, shutdownTimeoutMs);
    if (startup.signal.aborted) return;
    logger.info({ signal }, "signal during startup: stopping");
    startup.abort(signal);
    // should unwinding the startup hang, leave anyway: nothing has started running
    setTimeout(() => process.exit(0), shutdownTimeoutMs + 5000).unref();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  const uninstall = installFatalHandlers(() => service, logger, shutdownTimeoutMs);
  try {
    try {
      service = await start(startup.signal);
    } catch (err) {
      if (err instanceof StartupAborted || startup.signal.aborted) {
        logger.info("stopped during startup");
        return 0;
      }
      if (err instanceof DatabaseUnavailableError) {
        logger.fatal({ err: err.message }, `could not start: ${err.message}`);
        return 1;
      }
      throw err;
    }
    return await service.done;
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    uninstall();
  }
}

/**
 * The process around a running service: SIGTERM/SIGINT stop it gracefully (exit 0); an
 * uncaught exception or unhandled rejection is fatal: logged, the service stopped, exit 1 -
 * never a silent death with Node's own code - except a rejection that is a lost database
 * connection (see installFatalHandlers). Resolves with the exit code.
 */
export async function runUntilStopped(service: RunningService, logger: Logger, shutdownTimeoutMs: number): Promise<number> {
  return runProcess(async () => service, logger, shutdownTimeoutMs);
}

function stopOnSignal(service: RunningService, signal: NodeJS.Signals, logger: Logger, shutdownTimeoutMs: number): void {
  // should stopping hang (a connection never handed back), leave anyway: jobs still locked
  // are released by crash recovery
  setTimeout(() => {
    logger.error({ signal }, "stopping took longer than the shutdown timeout: exiting");
    process.exit(1);
  }, shutdownTimeoutMs + 15_000).unref();
  void service.stop(signal);
}

function installFatalHandlers(service: () => RunningService | undefined, logger: Logger, shutdownTimeoutMs: number): () => void {
  const fatal = (err: unknown) => {
    logger.fatal({ err }, "uncaught error: stopping");
    // should stopping itself hang, leave anyway (the jobs are released by crash recovery)
    setTimeout(() => process.exit(1), shutdownTimeoutMs + 5000).unref();
    const running = service();
    if (running) void running.stop("uncaught error", 1);
    else process.exit(1);
  };
  const onRejection = (err: unknown) => {
    // graphile-worker 0.17 does not await a job's completion/failure statement: when the
    // database connection dies under it (a PostgreSQL restart), the rejection lands here. The
    // database coming back is handled everywhere else; the job left locked is released by the
    // orphaned-job sweep (src/worker/orphaned_jobs.ts). Anything else is fatal.
    if (isConnectionError(err)) {
      const running = service();
      if (!running?.ctx?.weather?.report(err, "unawaited statement")) {
        logger.warn({ err: (err as Error).message }, "a database statement failed with the connection (not awaited by its caller): carrying on");
      }
      return;
    }
    fatal(err);
  };
  process.on("uncaughtException", fatal);
  process.on("unhandledRejection", onRejection);
  return () => {
    process.off("uncaughtException", fatal);
    process.off("unhandledRejection", onRejection);
  };
}
