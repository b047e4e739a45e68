import { Logger as GraphileLogger } from "graphile-worker";
import type { Logger } from "../log/logger.js";

/**
 * Route graphile-worker's own log lines into ebb's pino logger. Its per-job success line
 * ("Completed task ...", with the whole job row as metadata) goes to debug: ebb's own task
 * and execution records and log lines say the same, and serialising a job row per job cost
 * measurable CPU in the midnight storm (every job, on the 2 cores PostgreSQL shares).
 */
export function graphileLogger(logger: Logger): GraphileLogger {
  const child = logger.child({ component: "graphile-worker" });
  return new GraphileLogger(() => (level, message, meta) => {
    const perJobSuccess = level === "info" && (meta as { success?: unknown } | undefined)?.success === true;
    const method = perJobSuccess ? "debug" : level === "error" ? "error" : level === "warning" ? "warn" : level === "info" ? "info" : "debug";
    if (!child.isLevelEnabled(method)) return;
    child[method](meta ?? {}, message);
  });
}
