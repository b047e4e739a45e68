import type { Command } from "commander";
import { loadConfig } from "../../config/load.js";
import { resolveCommandDatabase } from "../../db/database.js";
import { migrate } from "../../db/migrate.js";
import { createPool } from "../../db/pool.js";
import { createLogger } from "../../log/logger.js";
import { addConfigOptions, configFlags } from "../config_options.js";

export function registerMigrate(program: Command): void {
  const cmd = program
    .command("migrate")
    .description("apply pending migrations (safe to run from many replicas at once) and graphile-worker's schema")
    .option("--record-only", "record pending migrations as applied without running them (after applying them with psql)");
  addConfigOptions(cmd, ["databaseUrl", "dataDir", "embeddedPort", "logLevel"]);
  cmd.action(async (opts: Record<string, unknown>) => {
    const config = loadConfig(process.env, configFlags(opts));
    const logger = createLogger(config.logLevel);
    const database = await resolveCommandDatabase(config, logger);
    const pool = createPool({ connectionString: database.url, max: 2, role: "migrate" });
    try {
      const result = await migrate(pool, { recordOnly: Boolean(opts.recordOnly), log: (m) => logger.info(m) });
      process.stdout.write(
        `${result.applied.length} migration(s) ${opts.recordOnly ? "recorded" : "applied"}, ${result.alreadyApplied.length} already applied\n`,
      );
    } finally {
      await pool.end();
      await database.stop();
    }
  });
}
