// ebb executions / stop / status / run end to end: real processes on a real PostgreSQL
// seeded by SQL. Tables for people, JSON that parses for scripts, exit 2 naming the problem.
import { test } from "node:test";
import assert from "node:assert/strict";
import { runEbb } from "../support/ebb_process.js";
import { freshDatabase } from "../support/db.js";
import { SECRET_REF, seedHistory } from "./support/history_seed.js";
import { runCli } from "./support/run_cli.js";
import { waitFor } from "../support/wait_for.js";

test("executions list/show, stop, status and run without a worker", async (t) => {
  const db = await freshDatabase(t);
  const seeded = await seedHistory(db.pool);
  const env = { DATABASE_URL: db.url };
  // in-process (main()) for most calls; the real binary for a few (marked `real`)
  const ebb = async (...args: string[]) => {
    const real = args[0] === "real";
    const r = real ? await runEbb(args.slice(1), env) : await runCli(args, env);
    assert.ok(!r.stdout.includes(SECRET_REF.slice(4)) && !r.stderr.includes(SECRET_REF.slice(4)), "credentials_ref printed");
    return r;
  };

  await t.test("executions list: JSON equal to SQL, table, filters", async () => {
    const json = await ebb("real", "executions", "list", "--json");
    assert.equal(json.code, 0, json.stderr);
    const items = JSON.parse(json.stdout) as any[];
    const { rows } = await db.pool.query("select id, kind, status from ebb.executions order by id desc");
    assert.deepEqual(items.map((e) => ({ id: e.id, kind: e.kind, status: e.status })), rows);
    assert.equal(items.find((e) => e.id === seeded.running).open_tasks, 2);

    const byPolicy = JSON.parse((await ebb("executions", "list", "--policy", "keep-recent", "--status", "success", "--json")).stdout) as any[];
    assert.deepEqual(byPolicy.map((e) => e.id), [seeded.done]);
    const byRegistry = JSON.parse((await ebb("executions", "list", "--registry", "local", "--json")).stdout) as any[];
    assert.deepEqual(byRegistry.map((e) => e.id), [seeded.failed]);

    const table = await ebb("executions", "list", "--limit", "2");
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /keep-recent/);
    assert.match(table.stdout, new RegExp(`\\b${seeded.pending}\\b.*pending`));
    assert.doesNotMatch(table.stdout, new RegExp(`\\b${seeded.done}\\b.*success`), "--limit 2 shows the two newest only");
  });

  await t.test("executions show: decisions summary, tasks, JSON", async () => {
    const json = await ebb("executions", "show", String(seeded.done), "--json");
    assert.equal(json.code, 0, json.stderr);
    const d = JSON.parse(json.stdout);
    assert.equal(d.execution.id, seeded.done);
    assert.deepEqual(d.task_counts, { pending: 0, running: 0, success: 2, error: 0, stopped: 0 });
    assert.deepEqual(d.decisions.map((c: any) => `${c.action}/${c.outcome}=${c.count}`), ["delete/deleted=2", "delete/failed=1", "retain/none=3"]);
    const table = await ebb("executions", "show", String(seeded.failed));
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /planning failed: registry said 401/);
    assert.match(table.stdout, /catalog: HTTP 401/);
    const shown = await ebb("executions", "show", String(seeded.done));
    assert.match(shown.stdout, /delete\s*│\s*failed\s*│\s*1/);
  });

  await t.test("status --json: heartbeats, stale repositories, scheduler lag, open executions", async () => {
    // the live worker beats just now (the seed's beat may be minutes old on a busy machine)
    await db.pool.query("update ebb.worker_heartbeats set last_seen_at = now() where pool_id = 'pool-alive'");
    const r = await ebb("real", "status", "--json");
    assert.equal(r.code, 0, r.stderr);
    const st = JSON.parse(r.stdout);
    assert.deepEqual(st.workers.map((w: any) => [w.pool_id, w.alive]), [["pool-alive", true], ["pool-dead", false]]);
    assert.equal(st.stale_repositories.count, 1);
    assert.equal(st.stale_repositories.sample[0].repository, "team/old");
    assert.equal(st.scheduler.due, 1);
    assert.ok(st.scheduler.lag_seconds >= 119, `lag ${st.scheduler.lag_seconds}`);
    assert.equal(st.scheduler.tick_lock_holder, null);
    assert.match(st.scheduler.leader_note, /not recorded/);
    assert.deepEqual({ running: st.executions.running, pending: st.executions.pending }, { running: 1, pending: 1 });
    assert.ok(st.connections.some((c: any) => c.application_name === "ebb:cli"), "the CLI's own connections are listed");
    for (const k of ["ready", "running", "scheduled", "failed"]) assert.equal(typeof st.queue[k], "number");
    assert.ok(st.slots.max_connections > 0 && st.slots.ebb >= 1 && st.slots.in_use >= st.slots.ebb, JSON.stringify(st.slots));
    assert.equal(st.slots.free, Math.max(0, st.slots.max_connections - st.slots.reserved_for_superusers - st.slots.in_use));
    const table = await ebb("status");
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /connection slots\s*│\s*\d+ of \d+ in use \(\d+ by ebb\), \d+ reserved for superusers, \d+ free/);
    assert.match(table.stdout, /scheduler leader\s*│\s*not recorded/);
    assert.match(table.stdout, /team\/old.*tags\/list answered HTTP 500/);
  });

  await t.test("stop: requested, already ended, unknown", async () => {
    const r = await ebb("stop", String(seeded.running), "--json");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { execution_id: seeded.running, result: "requested", status: "running" });
    const { rows } = await db.pool.query("select stop_requested from ebb.executions where id = $1", [seeded.running]);
    assert.equal(rows[0].stop_requested, true);
    const { rows: tasks } = await db.pool.query("select key, status from ebb.tasks where execution_id = $1 order by key", [seeded.running]);
    assert.deepEqual(tasks.map((x) => `${x.key}:${x.status}`), ["team/app:running", "team/web:stopped", "team/zzz:success"],
      "the pending task stops at once, the running one at its checkpoint, the finished one keeps its result");
    const again = await ebb("stop", String(seeded.done));
    assert.equal(again.code, 0);
    assert.match(again.stdout, /already ended \(success\)/);
    const missing = await ebb("stop", "999999");
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /execution 999999: no such execution/);
  });

  await t.test("stop --wait: follows the execution until the worker (here: SQL) has stopped it", async () => {
    const [{ id }] = (await db.pool.query(
      "insert into ebb.executions (kind, target_id, trigger, status, planned, started_at) values ('retention', $1, 'manual', 'running', true, now()) returning id",
      [seeded.policyId])).rows;
    await db.pool.query("insert into ebb.tasks (execution_id, key, status, started_at) values ($1, 'team/app', 'running', now())", [id]);
    await db.pool.query("update ebb.worker_heartbeats set last_seen_at = now() where pool_id = 'pool-alive'");
    const waiting = ebb("stop", String(id), "--wait", "--json");
    // what a worker does at its next checkpoint: the task ends stopped, then the execution
    await waitFor("ebb stop to request the stop", async () =>
      (await db.pool.query("select stop_requested from ebb.executions where id = $1", [id])).rows[0].stop_requested, 120_000, 50);
    await db.pool.query("update ebb.tasks set status = 'stopped', ended_at = now(), error = 'stop requested' where execution_id = $1", [id]);
    await db.pool.query("update ebb.executions set status = 'stopped', ended_at = now() where id = $1", [id]);
    const r = await waiting;
    assert.equal(r.code, 0, r.stderr);
    const detail = JSON.parse(r.stdout);
    assert.equal(detail.execution.status, "stopped");
    assert.deepEqual(detail.tasks.map((x: any) => x.error), ["stop requested"]);
  });

  await t.test("run: prints the id of a manual execution; --wait with no worker says so and exits 1", async () => {
    const r = await ebb("run", "keep-recent", "--dry-run");
    assert.equal(r.code, 0, r.stderr);
    const id = Number(r.stdout.trim());
    const { rows } = await db.pool.query("select kind, target_id, trigger, dry_run, status, plan_job_id is not null as queued from ebb.executions where id = $1", [id]);
    assert.deepEqual(rows[0], { kind: "retention", target_id: seeded.policyId, trigger: "manual", dry_run: true, status: "pending", queued: true });
    // the only heartbeat is made silent: nobody will run it
    await db.pool.query("update ebb.worker_heartbeats set last_seen_at = now() - interval '1 hour'");
    // in-process, so that the time measured is the wait's, not a process start's
    const started = Date.now();
    const w = await ebb("run", String(seeded.policyId), "--wait", "--worker-timeout", "2");
    assert.equal(w.code, 1, w.stderr);
    assert.match(w.stderr, /no ebb worker is alive .* stays pending until a worker runs it \(ebb start --roles worker\)/);
    assert.ok(Date.now() - started < 15_000);
    const json = await ebb("run", "keep-recent", "--json");
    assert.equal(json.code, 0, json.stderr);
    assert.equal(typeof JSON.parse(json.stdout).execution_id, "number");
  });
});
