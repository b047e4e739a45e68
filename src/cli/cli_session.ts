// The database side of the short-lived commands (run, executions, stop, sync, status): the
// same DB flags as `ebb migrate`, a small pool of its own (application_name ebb:cli), a
// check that the schema is current (a clear message instead of "relation does not exist"),
// (MigrationError: message and exit 1), and an AppContext so the commands call the very functions the service uses
// (triggerExecution, requestStop).
import { makeWorkerUtils } from "graphile-worker";
import type { Command } from "commander";
import { loadConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { resolveCommandDatabase } from "../db/database.js";
import { createKysely } from "../db/kysely.js";
import { MigrationError, migrationStatus, WORKER_SCHEMA } from "../db/migrate.js";
import { createPool } from "../db/pool.js";
import { createLogger } from "../log/logger.js";
import type { AppContext } from "../service/context.js";
import { addConfigOptions, configFlags } from "./config_options.js";

/** The flags every command that talks to the database takes (the same as `ebb migrate`). */
export const DB_FLAGS = ["databaseUrl", "dataDir", "embeddedPort", "logLevel"] as const;

/** Connections a CLI command holds at most (a follow loop and one-off queries). */
export const CLI_POOL_SIZE = 3;

export function addDbOptions(cmd: Command): Command {
  return addConfigOptions(cmd, [...DB_FLAGS]);
}

/**
 * Open the database, run `fn` with an AppContext, close everything (also on error).
 * The log level defaults to warn for these commands: their output is on stdout, and info
 * lines (embedded PostgreSQL starting...) would only be noise on stderr.
 */
export async function withCliContext<T>(opts: Record<string, unknown>, fn: (ctx: AppContext) => Promise<T>): Promise<T> {
  const env = { ...process.env };
  if (!env.EBB_LOG_LEVEL) env.EBB_LOG_LEVEL = "warn";
  const config: Config = loadConfig(env, configFlags(opts));
  const logger = createLogger(config.logLevel);
  const database = await resolveCommandDatabase(config, logger);
  const pool = createPool({ connectionString: database.url, max: CLI_POOL_SIZE, role: "cli" });
  try {
    const status = await migrationStatus(pool);
    if (!status.current) {
      throw new MigrationError(
        status.problem ?? `the database is not migrated (pending: ${status.pending.join(", ")}): run ebb migrate first`,
      );
    }
    const workerUtils = await makeWorkerUtils({ pgPool: pool, schema: WORKER_SCHEMA });
    try {
      return await fn({ config, pool, db: createKysely(pool), workerUtils, logger });
    } finally {
      await workerUtils.release();
    }
  } finally {
    await pool.end();
    await database.stop();
  }
}
