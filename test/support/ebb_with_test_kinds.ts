/**
 * Test-only entry program: `ebb start` (same startService, env configuration) with the
 * test_sleep execution kind registered. Spawned by spawnTestEbb (test/support/test_kinds.ts).
 */
import { loadConfig } from "../../src/config/load.js";
import { createLogger } from "../../src/log/logger.js";
import { runProcess } from "../../src/service/process_lifecycle.js";
import { startService } from "../../src/service/service.js";
import { testSleepKind } from "./test_sleep_kind.js";

const config = loadConfig(process.env);
const logger = createLogger(config.logLevel);
process.exit(await runProcess((signal) => startService(config, logger, { extraKinds: [testSleepKind], signal }), logger, config.shutdownTimeoutMs));
