// PgBouncer (Debian's pgbouncer package, /usr/sbin/pgbouncer) on a free loopback port in
// front of a real PostgreSQL, for the scale-out tests and the scale-out benchmark. No
// node:test import here (the benchmarks use it too): a test file stops it with
// `after(() => bouncer.stop())`; a process that exits without stopping it kills it anyway.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { freePort } from "./ports.js";
import { waitFor } from "./wait_for.js";

export interface PgBouncerOptions {
  /** the PostgreSQL behind it (any database name; the client's database name is kept) */
  serverUrl: string;
  /** pool_mode (default transaction) */
  poolMode?: "transaction" | "session";
  /** default_pool_size: server connections per database/user pair (default 8) */
  poolSize?: number;
  /** max_client_conn (default 500) */
  maxClientConn?: number;
}

export interface PgBouncer {
  port: number;
  poolSize: number;
  /** postgres:// URL of `database` through PgBouncer */
  url(database: string): string;
  /** everything PgBouncer logged so far (it logs to stderr) */
  log(): string;
  /** `SHOW <what>` on PgBouncer's admin console (pools, servers, clients, stats, ...) */
  show(what: string): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

const BINARY = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].find((p) => {
  try {
    execFileSync(p, ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}) ?? "pgbouncer";

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** libpq connection-string value, quoted */
function kv(value: string): string {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/**
 * Start PgBouncer: `* = host port user password` of serverUrl (every database name passes
 * through, logged in as serverUrl's user), auth_type any (loopback only), the pool mode and
 * size asked for, max_db_connections = the pool size (a hard cap per database), no reserve
 * pool. As root, PgBouncer refuses to run, so it drops to the `postgres` user (-u).
 */
export async function startPgBouncer(opts: PgBouncerOptions): Promise<PgBouncer> {
  const server = new URL(opts.serverUrl);
  const poolSize = opts.poolSize ?? 8;
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), "ebb-pgbouncer-"));
  await chmod(dir, 0o755); // readable by the postgres user when started as root
  const target = [
    `host=${kv(server.hostname || "127.0.0.1")}`,
    `port=${server.port || "5432"}`,
    `user=${kv(decodeURIComponent(server.username || "postgres"))}`,
    ...(server.password ? [`password=${kv(decodeURIComponent(server.password))}`] : []),
  ].join(" ");
  const ini = `[databases]
* = ${target}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = any
admin_users = pgbouncer
pool_mode = ${opts.poolMode ?? "transaction"}
default_pool_size = ${poolSize}
min_pool_size = 0
reserve_pool_size = 0
max_db_connections = ${poolSize}
max_client_conn = ${opts.maxClientConn ?? 500}
server_reset_query = DISCARD ALL
ignore_startup_parameters = extra_float_digits,options
log_connections = 0
log_disconnections = 0
stats_period = 60
`;
  const iniPath = path.join(dir, "pgbouncer.ini");
  await writeFile(iniPath, ini, { mode: 0o644 });
  const asRoot = process.getuid?.() === 0;
  const child = spawn(BINARY, [...(asRoot ? ["-u", "postgres"] : []), iniPath], { stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let log = "";
  child.stdout!.on("data", (c: Buffer) => (log += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (log += c.toString()));
  const exited = new Promise<void>((resolve) => child.on("exit", () => {
    running.delete(child);
    resolve();
  }));
  const url = (database: string) => `postgres://ebb@127.0.0.1:${port}/${database}`;

  const show = async (what: string) => {
    const client = new pg.Client({ connectionString: `postgres://pgbouncer@127.0.0.1:${port}/pgbouncer` });
    await client.connect();
    try {
      // no parameters: pg uses the simple query protocol, the only one the admin console speaks
      const res = await client.query(`SHOW ${what}`);
      return res.rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  };
  try {
    await waitFor("PgBouncer to accept connections", async () => {
      if (child.exitCode !== null) throw new Error(`pgbouncer exited (${child.exitCode}):\n${log}`);
      return show("version").then(() => true, () => false);
    }, 15_000, 100);
  } catch (err) {
    child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    poolSize,
    url,
    log: () => log,
    show,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM"); // immediate shutdown (the ebb processes are gone by now)
        const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(killer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
