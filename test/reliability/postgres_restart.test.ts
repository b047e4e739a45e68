import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { migrate } from "../../src/db/migrate.js";
import { createPool } from "../../src/db/pool.js";
import { startPrivatePostgres } from "../support/private_postgres.js";
import { installTestKind, spawnTestEbb } from "../support/test_kinds.js";
import { queryRows } from "../support/db.js";

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err; // the server may still be coming back
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`);
    await sleep(200);
  }
}

/**
 * One ebb process (scheduler, worker, http; pool 8) on a private PostgreSQL; an execution of
 * `tasks` test_sleep tasks of `sleepMs` each; once they all run, the server is stopped (fast
 * shutdown: every session is terminated) and started again on the same port and data dir.
 * Then: the execution ends in success, every task ran to completion exactly once, nothing
 * stays running, the same ebb process is alive, /readyz went 503 and is 200 again, and a new
 * execution still runs.
 */
async function restartMidExecution(opts: { tasks: number; sleepMs: number; stopCheckIntervalMs: number; downMs: number; supervise?: boolean }) {
  const server = await startPrivatePostgres();
  const pool = createPool({ connectionString: server.url, max: 2, role: "test" });
  await migrate(pool);
  await installTestKind(pool);
  await pool.query("insert into public.test_kind_targets (target_id, tasks, sleep_ms) values (1, $1, $2)", [opts.tasks, opts.sleepMs]);
  const env = {
    DATABASE_URL: server.url, EBB_POOL_SIZE: "8", EBB_WORKER_CONCURRENCY: String(opts.tasks),
    EBB_ROLES: "scheduler,worker,http", EBB_HTTP_PORT: "0", EBB_MIGRATE: "false", EBB_LOG_LEVEL: "info",
    EBB_HEARTBEAT_INTERVAL_MS: "500", EBB_DEAD_WORKER_TIMEOUT_MS: "5000",
    EBB_STOP_CHECK_INTERVAL_MS: String(opts.stopCheckIntervalMs),
  };
  let ebb = spawnTestEbb(env);
  let ready = await ebb.waitForReady();
  const readyz = async () => (await fetch(`${String(ready.http)}/readyz`)).status;
  const alive = (what: string) =>
    assert.ok(ebb.child.exitCode === null && ebb.child.signalCode === null, `${what}: ebb exited (${ebb.child.exitCode}); stderr:\n${ebb.stderr().slice(-3000)}`);
  assert.equal(await readyz(), 200);

  const { rows: [{ id }] } = await pool.query("select ebb.trigger_execution('test_sleep', 1, false) as id");
  await waitFor("every task running", async () =>
    (await pool.query("select count(*)::int as n from public.test_task_starts")).rows[0].n >= opts.tasks, 20_000);
  await sleep(300);

  await pool.end();
  const stoppedAt = Date.now();
  await server.stop();
  if (!opts.supervise) {
    await waitFor("/readyz to report the database gone", async () => (await readyz()) === 503, 10_000)
      .catch((err: Error) => { throw new Error(`${err.message}; ebb exit ${ebb.child.exitCode}; stderr:\n${ebb.stderr().slice(-4000)}`); });
  }
  await sleep(Math.max(0, opts.downMs - (Date.now() - stoppedAt)));
  if (!opts.supervise) alive("during the outage");
  await server.start();
  const first = ebb;
  const pool2 = createPool({ connectionString: server.url, max: 2, role: "test" });
  const q = queryRows(pool2);
  if (opts.supervise) {
    // what systemd / compose `restart: on-failure` does: a process that exited is started again
    // (a fatal error stops the process gracefully first, which takes a moment)
    await waitFor("the first process to exit or its execution to end", async () =>
      ebb.child.exitCode !== null ||
      (await q("select 1 from ebb.executions where id = $1 and status not in ('pending', 'running')", [id])).length > 0, 30_000);
    if (ebb.child.exitCode !== null) {
      ebb = spawnTestEbb(env);
      ready = await ebb.waitForReady();
    }
  }

  try {
    const done = await waitFor("the execution to end", async () => {
      if (ebb.child.exitCode !== null) return { status: "ebb exited", error: ebb.stderr().slice(-3000) };
      return (await q("select status, error from ebb.executions where id = $1 and status not in ('pending', 'running')", [id]))[0];
    }, 60_000);
    alive("after the restart");
    const tasks = await q("select key, status, attempts, error from ebb.tasks where execution_id = $1 order by id", [id]);
    assert.equal(done.status, "success", `execution ended ${done.status}: ${done.error}; tasks ${JSON.stringify(tasks)}`);
    assert.equal(tasks.length, opts.tasks);
    assert.ok(tasks.every((t) => t.status === "success"), "no task lost");
    const runs = await q("select task_id, count(*)::int as n from public.test_task_runs group by task_id");
    assert.equal(runs.length, opts.tasks);
    assert.ok(runs.every((r) => r.n === 1), "no task ran to completion twice");
    assert.equal((await q("select count(*)::int as n from ebb.executions where status in ('pending', 'running')"))[0].n, 0, "no execution stays running");
    await waitFor("/readyz 200 after the restart", async () => (await readyz()) === 200, 15_000);

    // the same process still does new work
    const [{ id: next }] = await q("select ebb.trigger_execution('test_sleep', 2, false) as id");
    await waitFor("a new execution after the restart", async () =>
      (await q("select 1 from ebb.executions where id = $1 and status = 'success'", [next]))[0], 20_000);
    alive("at the end");
  } finally {
    await pool2.end();
  }
  ebb.child.kill("SIGTERM");
  assert.equal((await ebb.exited).code, 0, ebb.stderr().slice(-3000));
  return { ebb, first };
}

test("PostgreSQL restarted while tasks run (no task touches the database during the 2 s outage): the same ebb process recovers, the execution succeeds with every task run once, /readyz 503 then 200", async () => {
  // the tasks sleep 8 s and ask about stop only every 60 s: the outage falls inside their sleep
  const { ebb } = await restartMidExecution({ tasks: 4, sleepMs: 8000, stopCheckIntervalMs: 60_000, downMs: 2000 });
  // what the outage did inside ebb: warnings, then recovery, no fatal error
  assert.ok(ebb.logs.some((l) => l.msg === "worker heartbeat failed"), "the heartbeat saw the outage");
  assert.ok(!ebb.logs.some((l) => typeof l.msg === "string" && l.msg.startsWith("fatal error")));
});

// graphile-worker 0.17.3 cannot record a job's failure while the database is down (its
// failJobs batch rethrows connection errors) and its worker pool would die: ebb reports such
// failures only once the database answers again (src/worker/task_list.ts reportAfterOutage).
test(
  "PostgreSQL restarted while tasks query it: the same ebb process recovers and the interrupted tasks run again",
  async () => {
    // checkpoints query the database every 100 ms: the outage makes the running tasks throw
    await restartMidExecution({ tasks: 4, sleepMs: 4000, stopCheckIntervalMs: 100, downMs: 2000 });
  },
);

test("PostgreSQL restarted while tasks query it, under a supervisor that restarts an exited process: the execution still succeeds, no task lost or completed twice, nothing stays running", async () => {
  const { ebb, first } = await restartMidExecution({ tasks: 4, sleepMs: 4000, stopCheckIntervalMs: 100, downMs: 2000, supervise: true });
  // the first process normally recovers in place (then it is the same one); if it exited, with code 1
  if (first !== ebb) {
    assert.equal(first.child.exitCode, 1, "the first process stopped with an error exit code, not silently" + first.stderr().slice(-2500));
    assert.ok(ebb.logs.some((l) => l.msg === "recovered work"), "the new process released the dead pool's jobs");
  }
});
