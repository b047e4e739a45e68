import type { Command } from "commander";
import { assertHttpExposure, loadConfig } from "../../config/load.js";
import { SETTINGS } from "../../config/schema.js";
import { createLogger } from "../../log/logger.js";
import { runUntilStopped } from "../../service/process_lifecycle.js";
import { startService } from "../../service/service.js";
import { addConfigOptions, configFlags } from "../config_options.js";

export function registerStart(program: Command): void {
  const cmd = program
    .command("start")
    .description("run ebb: migrations, then the scheduler, worker and http roles (embedded PostgreSQL when DATABASE_URL is unset)");
  // start takes every setting as a flag
  addConfigOptions(cmd, Object.keys(SETTINGS) as (keyof typeof SETTINGS)[]);
  cmd.action(async (opts: Record<string, unknown>) => {
    const config = loadConfig(process.env, configFlags(opts));
    assertHttpExposure(config);
    const logger = createLogger(config.logLevel);
    const service = await startService(config, logger);
    process.exitCode = await runUntilStopped(service, logger, config.shutdownTimeoutMs);
  });
}
