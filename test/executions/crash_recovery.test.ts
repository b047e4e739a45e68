import assert from "node:assert/strict";
import { test } from "node:test";
import { freshDatabase } from "../support/db.js";
import { waitFor } from "../support/wait_for.js";
import { installTestKind, spawnTestEbb } from "../support/test_kinds.js";

test("kill -9 of a worker mid-task: another process resumes its tasks within the timeout; none lost, none completed twice", async () => {
  const db = await freshDatabase();
  await installTestKind(db.pool);
  const { q } = db;
  await q("insert into public.test_kind_targets (target_id, tasks, sleep_ms) values (1, 6, 3000)");
  const env = {
    DATABASE_URL: db.url, EBB_POOL_SIZE: "4", EBB_WORKER_CONCURRENCY: "2",
    EBB_HEARTBEAT_INTERVAL_MS: "500", EBB_DEAD_WORKER_TIMEOUT_MS: "3000", EBB_LOG_LEVEL: "info",
  };
  const victim = spawnTestEbb({ ...env, EBB_ROLES: "worker" });
  await victim.waitForReady();
  // a scheduled execution (every second; the schedule is disabled after the first one)
  await q("insert into ebb.schedules (kind, target_id, cron) values ('test_sleep', 1, '* * * * * *')");
  const survivor = spawnTestEbb({ ...env, EBB_ROLES: "scheduler" });
  await survivor.waitForReady();
  const [exec] = await waitFor("the first execution", async () => (await q("select id from ebb.executions")).length ? q("select id from ebb.executions order by id limit 1") : null, 15_000);
  await q("update ebb.schedules set enabled = false");
  await waitFor("two tasks running on the victim", async () =>
    (await q("select count(*)::int as n from public.test_task_starts where pid = $1", [victim.child.pid]))[0].n >= 2, 15_000);
  const killedAt = Date.now();
  victim.child.kill("SIGKILL");
  await victim.exited;
  survivor.child.kill("SIGTERM");
  await survivor.exited;
  // a fresh worker+scheduler process: it must find the dead pool and redo its work
  const rescuer = spawnTestEbb({ ...env, EBB_ROLES: "scheduler,worker" });
  // process start-up (tsx, migrations) is not part of recovery: time it from "ready"
  await rescuer.waitForReady();
  const readyAt = Date.now();
  const recovered = await rescuer.waitForLog((l) => l.msg === "recovered work" && Array.isArray(l.deadPools) && l.deadPools.length > 0, 30_000);
  const detectedMs = Date.now() - readyAt;
  const done = await waitFor("the execution to end", async () => (await q("select status from ebb.executions where id = $1 and status not in ('pending','running')", [exec.id]))[0], 45_000);
  const tookMs = Date.now() - readyAt;
  rescuer.child.kill("SIGTERM");
  assert.equal((await rescuer.exited).code, 0, rescuer.stderr().slice(-2000));

  assert.equal(done.status, "success");
  assert.ok(detectedMs < 15_000, `dead worker detected ${detectedMs} ms after the rescuer was ready (timeout 3 s)`);
  assert.ok(tookMs < 60_000, `recovered ${tookMs} ms after the rescuer was ready (${Date.now() - killedAt} ms after the kill)`);
  // the victim's two worker pools (the worker's lanes, src/worker/runner.ts), nothing else;
  // their heartbeats go stale half a beat apart, so one recovery pass may find one of them
  // and the next pass the other
  const deadPools = new Set(rescuer.logs.filter((l) => l.msg === "recovered work" && Array.isArray(l.deadPools))
    .flatMap((l) => l.deadPools as string[]));
  assert.ok((recovered.deadPools as string[]).length > 0);
  assert.equal(deadPools.size, 2, `dead pools recovered: ${[...deadPools].join(", ")}`);
  const tasks = await q("select id, status, attempts from ebb.tasks where execution_id = $1 order by id", [exec.id]);
  assert.equal(tasks.length, 6);
  assert.ok(tasks.every((t) => t.status === "success"), "no task lost");
  const runs = await q("select task_id, count(*)::int as n, max(pid) as pid from public.test_task_runs group by task_id");
  assert.equal(runs.length, 6);
  assert.ok(runs.every((r) => r.n === 1), "no task ran to completion twice");
  assert.ok(runs.every((r) => r.pid === rescuer.child.pid), "the victim was killed before any 3-second task could finish");
  const interrupted = tasks.filter((t) => t.attempts === 2);
  assert.ok(interrupted.length >= 2, "the tasks running at the kill ran again");
  const { rows: hb } = await db.pool.query("select count(*)::int as n from ebb.worker_heartbeats");
  assert.equal(hb[0].n, 0, "the dead pool's heartbeat is gone, and the rescuer removed its own on exit");
});
