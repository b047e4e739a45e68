import type { Config } from "../config/schema.js";
import type { Logger } from "../log/logger.js";
import { connectRunningEmbedded, EmbeddedDatabaseError, embeddedState, startEmbedded } from "./embedded.js";

export interface ResolvedDatabase {
  url: string;
  embedded: boolean;
  stop(): Promise<void>;
}

/**
 * `ebb start`: DATABASE_URL when set; otherwise the embedded PostgreSQL in config.dataDir,
 * initialised on first use.
 */
export async function resolveDatabase(config: Config, logger: Logger): Promise<ResolvedDatabase> {
  if (config.databaseUrl) {
    return { url: config.databaseUrl, embedded: false, stop: async () => {} };
  }
  logger.info({ dataDir: config.dataDir, port: config.embeddedPort }, "starting embedded PostgreSQL");
  const db = await startEmbedded({
    dataDir: config.dataDir,
    port: config.embeddedPort,
    log: (line) => logger.debug({ postgres: line }),
  });
  return { url: db.url, embedded: true, stop: db.stop };
}

/**
 * Every other command (migrate, policy, run, executions, stop, sync, status): DATABASE_URL
 * when set; otherwise the embedded PostgreSQL of config.dataDir and no other. When `ebb
 * start` runs it (the quick start: `ebb start` in one terminal, `ebb run ...` in another),
 * the running server is used once it proved to be that data dir's (its password and instance
 * id); when it is not running the command starts it for its own duration. A data dir without
 * a cluster is refused (exit 2): only `ebb start` creates one.
 */
export async function resolveCommandDatabase(config: Config, logger: Logger): Promise<ResolvedDatabase> {
  if (config.databaseUrl) {
    return { url: config.databaseUrl, embedded: false, stop: async () => {} };
  }
  const state = await embeddedState(config.dataDir);
  if (!state.initialised) {
    throw new EmbeddedDatabaseError(
      `no database: DATABASE_URL (--database-url) is not set and the data dir ${state.dataDir} holds no embedded PostgreSQL; run "ebb start" first (it creates one there), pass the data dir ebb start uses with --data-dir / EBB_DATA_DIR, or set DATABASE_URL`,
    );
  }
  const running = await connectRunningEmbedded(state);
  if (running) return { url: running.url, embedded: true, stop: running.stop };
  return resolveDatabase(config, logger);
}
