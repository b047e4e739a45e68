// One ebb process of the midnight storm: exactly `ebb start` (loadConfig from the
// environment, startService with the roles asked for), plus the bench's no-op execution kind.
// Run as a child: node --import tsx bench/midnight_storm/storm_process.ts
import { loadConfig } from "../../src/config/load.js";
import { createLogger } from "../../src/log/logger.js";
import { startService } from "../../src/service/service.js";
import { installStatementCounter } from "../support/statement_counter.js";
import { benchNoopKind } from "./noop_kind.js";

if (process.env.BENCH_STATEMENTS_FILE) installStatementCounter(process.env.BENCH_STATEMENTS_FILE);

const config = loadConfig(process.env, {});
const logger = createLogger(config.logLevel);
const service = await startService(config, logger, { extraKinds: [benchNoopKind] });
for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => void service.stop(signal));
process.exitCode = await service.done;
setTimeout(() => process.exit(process.exitCode ?? 0), 200).unref();
