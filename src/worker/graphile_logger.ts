import { Logger as GraphileLogger } from "graphile-worker";
import type { Logger } from "../log/logger.js";

/** Route graphile-worker's own log lines into ebb's pino logger. */
export function graphileLogger(logger: Logger): GraphileLogger {
  const child = logger.child({ component: "graphile-worker" });
  return new GraphileLogger(() => (level, message, meta) => {
    const method = level === "error" ? "error" : level === "warning" ? "warn" : level === "info" ? "info" : "debug";
    child[method](meta ?? {}, message);
  });
}
