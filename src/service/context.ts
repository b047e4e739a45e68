import type { Kysely } from "kysely";
import type pg from "pg";
import type { WorkerUtils } from "graphile-worker";
import type { Config } from "../config/schema.js";
import type { DatabaseWeather } from "../db/database_weather.js";
import type { Logger } from "../log/logger.js";

/**
 * What every part of a running ebb process shares: the configuration, the ONE pool, the
 * kysely instance and graphile-worker utils over that same pool, the logger and the
 * database weather.
 */
export interface AppContext {
  config: Config;
  pool: pg.Pool;
  // Table types are declared next to the migrations that create them (see src/db/tables.ts).
  db: Kysely<any>;
  workerUtils: WorkerUtils;
  logger: Logger;
  /**
   * The database's refusals and outages as this process sees them (a running service; CLI
   * commands have none): the pool waits here, periodic jobs report here, /readyz and the
   * metrics read it.
   */
  weather?: DatabaseWeather;
}
