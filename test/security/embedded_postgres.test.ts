// The embedded PostgreSQL of a data dir: a random superuser password kept in the data dir
// (mode 0600), loopback and a private socket dir only; every command finds that server and
// no other (an id stored at init), refuses a data dir without one instead of creating it;
// and no "TypeError: done is not a function" at the end of any process.
import assert from "node:assert/strict";
import { chmod, mkdtemp, readFile, rm, stat, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import pg from "pg";
import { CREDENTIALS_FILE, startEmbedded } from "../../src/db/embedded.js";
import { SERVER_URL } from "../support/db.js";
import { runEbb, spawnEbb } from "../support/ebb_process.js";
import { freePort } from "../support/ports.js";

const EXIT_HOOK_ERROR = /done is not a function|TypeError/;

async function tempDataDir(t: { after(fn: () => unknown): void }, name: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), `ebb-${name}-`));
  await chmod(dir, 0o755); // as root the embedded server runs as user postgres
  t.after(() => rm(dir, { recursive: true, force: true }));
  return path.join(dir, "data");
}

async function credentials(dataDir: string): Promise<{ password: string; instance_id: string }> {
  return JSON.parse(await readFile(path.join(dataDir, CREDENTIALS_FILE), "utf8"));
}

/** The SQLSTATE of a login, or "ok". */
async function login(port: number, password: string, sql?: string): Promise<string | Record<string, unknown>> {
  const client = new pg.Client({ host: "127.0.0.1", port, user: "postgres", password, database: "postgres" });
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
  try {
    return sql ? (await client.query(sql)).rows[0] : "ok";
  } finally {
    await client.end();
  }
}

test("ebb start gives its embedded PostgreSQL a random password (0600 file), loopback and a private socket; commands use that server, and no process ends with the exit-hook TypeError", { timeout: 300_000 }, async (t) => {
  const dataDir = await tempDataDir(t, "embedded-secret");
  const port = await freePort();
  const env = { DATABASE_URL: "", EBB_DATA_DIR: dataDir, EBB_EMBEDDED_PORT: String(port) };
  const ebb = spawnEbb(["start", "--http-port", "0", "--roles", "worker,http"], env);
  t.after(() => ebb.child.kill("SIGKILL"));
  await ebb.waitForLog((l) => l.msg === "ebb ready", 120_000);

  const file = path.join(dataDir, CREDENTIALS_FILE);
  assert.equal((await stat(file)).mode & 0o777, 0o600, "the password file is readable by its owner only");
  const creds = await credentials(dataDir);
  assert.ok(creds.password.length >= 24 && creds.password !== "postgres");
  assert.equal((await stat(path.join(dataDir, "pg"))).mode & 0o777, 0o700, "the socket directory is private");
  assert.equal(await login(port, "postgres"), "28P01", "the old default password is refused");
  assert.deepEqual(await login(port, creds.password, "select current_setting('listen_addresses') as listen, current_setting('unix_socket_permissions') as perms, current_setting('ebb.instance_id') as id"),
    { listen: "127.0.0.1", perms: "0700", id: creds.instance_id });
  assert.ok(!ebb.stderr().includes(creds.password), "the password is not logged");

  // every command, policy included, uses the running server of its data dir
  for (const args of [["status", "--json"], ["policy", "list"], ["executions", "list"], ["migrate"]]) {
    const r = await runEbb(args, env);
    assert.equal(r.code, 0, `ebb ${args.join(" ")}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, EXIT_HOOK_ERROR, `ebb ${args.join(" ")}`);
    assert.ok(!(r.stdout + r.stderr).includes(creds.password));
  }
  ebb.child.kill("SIGTERM");
  assert.equal((await ebb.exited).code, 0, ebb.stderr());
  assert.doesNotMatch(ebb.stderr(), EXIT_HOOK_ERROR, "a clean stop ends without the exit-hook TypeError");

  // not running: the command starts the data dir's server for itself, and stops it again
  for (const args of [["status"], ["migrate"], ["policy", "list", "--json"]]) {
    const r = await runEbb(args, env);
    assert.equal(r.code, 0, `ebb ${args.join(" ")}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, EXIT_HOOK_ERROR, `ebb ${args.join(" ")} (own server)`);
  }

  // another PostgreSQL on the port the data dir's postmaster.pid names: refused, saying so
  const other = Number(new URL(SERVER_URL).port || 5432);
  const pidFile = path.join(dataDir, "pg", "postmaster.pid");
  await writeFile(pidFile, `${process.pid}\n${path.join(dataDir, "pg")}\n0\n${other}\n\n127.0.0.1\n`);
  try {
    for (const args of [["executions", "list"], ["policy", "list"], ["status"]]) {
      const r = await runEbb(args, env);
      assert.equal(r.code, 2, `ebb ${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${other} .*not the embedded PostgreSQL of ${dataDir.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`));
      assert.equal(r.stdout, "", "nothing of the other server is shown");
      assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
    }
  } finally {
    await unlink(pidFile);
  }
  // the data dir's port taken by another server: the command cannot start its own and says so
  const taken = await runEbb(["executions", "list"], { ...env, EBB_EMBEDDED_PORT: String(other) });
  assert.equal(taken.code, 2, taken.stderr);
  assert.match(taken.stderr, /embedded PostgreSQL did not start .*is the port taken.*Address already in use/);
  assert.equal(taken.stdout, "");
});

test("without DATABASE_URL and without an initialised data dir, commands say so (exit 2) instead of creating a cluster", { timeout: 120_000 }, async (t) => {
  const dataDir = await tempDataDir(t, "embedded-none");
  const env = { DATABASE_URL: "", EBB_DATA_DIR: dataDir, EBB_EMBEDDED_PORT: String(await freePort()) };
  for (const args of [["status"], ["migrate"], ["policy", "list"], ["executions", "list"], ["run", "p"]]) {
    const r = await runEbb(args, env);
    assert.equal(r.code, 2, `ebb ${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /DATABASE_URL \(--database-url\) is not set and the data dir .* holds no embedded PostgreSQL; run "ebb start" first/);
    assert.doesNotMatch(r.stderr, EXIT_HOOK_ERROR);
    assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
  }
  await assert.rejects(stat(path.join(dataDir, "pg")), "no cluster was created");
});

test("a data dir initialised with the old default password gets a random one on its next start", { timeout: 300_000 }, async (t) => {
  const dataDir = await tempDataDir(t, "embedded-legacy");
  const port = await freePort();
  // make it look like ebb's earlier data dirs: password "postgres", no id, no password file
  const first = await startEmbedded({ dataDir, port });
  const admin = new pg.Client(first.url);
  await admin.connect();
  await admin.query("alter role postgres password 'postgres'");
  await admin.query("alter role postgres reset ebb.instance_id");
  await admin.end();
  await first.stop();
  await unlink(path.join(dataDir, CREDENTIALS_FILE));

  const r = await runEbb(["migrate"], { DATABASE_URL: "", EBB_DATA_DIR: dataDir, EBB_EMBEDDED_PORT: String(port) });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, EXIT_HOOK_ERROR);
  assert.equal((await stat(path.join(dataDir, CREDENTIALS_FILE))).mode & 0o777, 0o600);
  const creds = await credentials(dataDir);
  const again = await startEmbedded({ dataDir, port });
  t.after(() => again.stop());
  assert.equal(await login(port, "postgres"), "28P01", "the old password no longer works");
  assert.deepEqual(await login(port, creds.password, "select current_setting('ebb.instance_id') as id"), { id: creds.instance_id });
});
