import type { Config } from "../config/schema.js";
import type { Logger } from "../log/logger.js";
import { startEmbedded } from "./embedded.js";

export interface ResolvedDatabase {
  url: string;
  embedded: boolean;
  stop(): Promise<void>;
}

/** DATABASE_URL when set; otherwise the embedded PostgreSQL in config.dataDir. */
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
