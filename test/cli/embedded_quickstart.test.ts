// The quick start without DATABASE_URL: `ebb start` runs the embedded PostgreSQL, and the
// operator commands in another terminal use that running server (instead of failing to start
// a second one on the same data dir); once ebb is stopped, a command starts it for itself.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { runEbb, spawnEbb } from "../support/ebb_process.js";
import { freePort } from "../support/ports.js";

test("ebb status and executions list talk to the embedded PostgreSQL that ebb start runs", { timeout: 150_000 }, async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), "ebb-quickstart-"));
  await chmod(dataDir, 0o755); // as root the embedded server runs as user postgres
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const env = { DATABASE_URL: "", EBB_DATA_DIR: dataDir, EBB_EMBEDDED_PORT: String(await freePort()) };
  const ebb = spawnEbb(["start", "--roles", "worker"], env);
  t.after(() => ebb.child.kill("SIGKILL"));
  await ebb.waitForReady();

  const status = await runEbb(["status", "--json"], env);
  assert.equal(status.code, 0, status.stderr);
  const st = JSON.parse(status.stdout);
  // one heartbeat per worker lane (src/worker/runner.ts), both of this process
  const alive = st.workers.filter((w: any) => w.alive);
  assert.equal(alive.length, 2, "the running ebb's worker heartbeats are visible");
  assert.ok(alive.every((w: any) => w.pid === ebb.child.pid), JSON.stringify(alive));
  assert.ok(st.connections.some((c: any) => c.application_name === "ebb:worker"));

  ebb.child.kill("SIGTERM");
  assert.equal((await ebb.exited).code, 0, ebb.stderr());
  // ebb is gone: the command starts the embedded server itself, and stops it again
  const list = await runEbb(["executions", "list", "--json"], env);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(JSON.parse(list.stdout), []);
});
