import assert from "node:assert/strict";
import { test } from "node:test";
import { createPool } from "../../src/db/pool.js";
import { runEbb, spawnEbb } from "../support/ebb_process.js";
import { freePort } from "../support/ports.js";
import { startPrivatePostgres } from "../support/private_postgres.js";
import { waitFor } from "../support/wait_for.js";

// `ebb start` (the real command) against a database that is not there yet: it waits (with
// backoff, logged once) up to EBB_DATABASE_WAIT_MS, honours SIGTERM meanwhile, and runs
// once the database answers.

const unavailable = (l: Record<string, unknown>) => typeof l.msg === "string" && l.msg.startsWith("database unavailable");

test("PostgreSQL not listening yet when ebb starts: ebb waits, logs it once, then migrates and runs when the server comes up", async () => {
  const server = await startPrivatePostgres();
  await server.stop(); // the port is known, nothing listens on it
  const ebb = spawnEbb(["start"], {
    DATABASE_URL: server.url, EBB_ROLES: "scheduler,worker,http", EBB_HTTP_PORT: "0", EBB_POOL_SIZE: "6",
    EBB_LOG_LEVEL: "info", EBB_DATABASE_WAIT_MS: "120000",
  });
  const down = await ebb.waitForLog(unavailable, 120_000); // a loaded machine starts node slowly
  assert.equal(down.sqlstate, "ECONNREFUSED", JSON.stringify(down));
  // it keeps trying for a while (several backoff rounds), still alive, still not ready
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal(ebb.child.exitCode, null, ebb.stderr().slice(-2000));
  assert.ok(!ebb.logs.some((l) => l.msg === "ebb ready"));

  await server.start();
  const ready = await ebb.waitForLog((l) => l.msg === "ebb ready", 120_000);
  await ebb.waitForLog((l) => l.msg === "database available again", 30_000); // the end of the outage is logged
  assert.equal(ebb.logs.filter(unavailable).length, 1, "one outage, logged once (not once per retry)");
  const readyz = await fetch(`${String(ready.http)}/readyz`);
  assert.equal(readyz.status, 200, await readyz.text());
  const pool = createPool({ connectionString: server.url, max: 1, role: "test" });
  try {
    const { rows } = await pool.query("select count(*)::int as n from ebb.schema_migrations");
    assert.ok(rows[0].n > 0, "the waiting start went on to migrate");
  } finally {
    await pool.end();
  }
  ebb.child.kill("SIGTERM");
  assert.equal((await ebb.exited).code, 0, ebb.stderr().slice(-2000));
});

test("the database stays away past EBB_DATABASE_WAIT_MS: ebb exits 1 naming the reason and the setting", async () => {
  const port = await freePort(); // nothing listens here
  const ebb = spawnEbb(["start"], {
    DATABASE_URL: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`, EBB_ROLES: "scheduler,worker",
    EBB_LOG_LEVEL: "info", EBB_DATABASE_WAIT_MS: "2000",
  });
  // timed from the first refusal (starting node and loading ebb takes a while on a loaded machine)
  const first = await ebb.waitForLog(unavailable, 120_000);
  const { code } = await ebb.exited;
  const tookMs = Date.now() - Number(first.time);
  assert.equal(code, 1, ebb.stderr().slice(-2000));
  const fatal = ebb.logs.find((l) => typeof l.msg === "string" && l.msg.startsWith("could not start"));
  assert.ok(fatal, `a fatal line says why; stderr:\n${ebb.stderr().slice(-2000)}`);
  assert.match(String(fatal.msg), /ECONNREFUSED/);
  assert.match(String(fatal.msg), /EBB_DATABASE_WAIT_MS/);
  assert.ok(tookMs >= 1500, `it waited about the deadline (${tookMs} ms after the first refusal)`);
  assert.ok(tookMs < 20_000, `and not much longer (${tookMs} ms)`);
  assert.doesNotMatch(ebb.stderr(), /\n\s+at /, "no stack trace");
});

test("SIGTERM while startup waits for the database (too many clients): ebb exits 0 promptly; ebb status says the database refuses connections", async () => {
  const server = await startPrivatePostgres({ postgresFlags: ["-c", "max_connections=6", "-c", "superuser_reserved_connections=0"] });
  // a neighbour holds every slot
  const neighbour = createPool({ connectionString: server.url, max: 50, role: "neighbour" });
  const held = [];
  for (;;) {
    try {
      held.push(await neighbour.connect());
    } catch {
      break;
    }
  }
  assert.ok(held.length >= 4, `the neighbour took the slots (${held.length})`);
  try {
    const ebb = spawnEbb(["start"], {
      DATABASE_URL: server.url, EBB_ROLES: "scheduler,worker", EBB_POOL_SIZE: "4", EBB_LOG_LEVEL: "info",
      EBB_DATABASE_WAIT_MS: "600000",
    });
    const down = await ebb.waitForLog(unavailable, 120_000); // a loaded machine starts node slowly
    assert.equal(down.sqlstate, "53300", JSON.stringify(down));
    const sent = Date.now();
    ebb.child.kill("SIGTERM");
    const { code } = await ebb.exited;
    const tookMs = Date.now() - sent;
    assert.equal(code, 0, ebb.stderr().slice(-2000));
    assert.ok(tookMs < 10_000, `exited ${tookMs} ms after SIGTERM`);
    assert.ok(ebb.logs.some((l) => l.msg === "stopped during startup"), ebb.stderr().slice(-2000));

    // `ebb status` cannot get a connection either: it says the database is unavailable and why
    const status = await runEbb(["status"], { DATABASE_URL: server.url });
    assert.equal(status.code, 1, status.stderr);
    assert.match(status.stderr, /ebb status: the database is unavailable \(53300: sorry, too many clients already\)/);
    assert.doesNotMatch(status.stderr, /\n\s+at /, "no stack trace");
  } finally {
    for (const c of held) c.release();
    await neighbour.end();
  }
});
