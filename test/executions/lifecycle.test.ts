import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { loadConfig } from "../../src/config/load.js";
import { pruneHistory } from "../../src/executions/history_pruning.js";
import { requestStop } from "../../src/executions/stop.js";
import { triggerExecution } from "../../src/executions/trigger.js";
import { createLogger } from "../../src/log/logger.js";
import { startService, type RunningService } from "../../src/service/service.js";
import { freshDatabase } from "../support/db.js";
import { waitFor } from "../support/wait_for.js";
import { installTestKind, testSleepKind } from "../support/test_kinds.js";

const db = await freshDatabase();
const { q } = db;
let service: RunningService;

before(async () => {
  await installTestKind(db.pool);
  const config = loadConfig({
    DATABASE_URL: db.url, EBB_ROLES: "worker", EBB_POOL_SIZE: "8", EBB_WORKER_CONCURRENCY: "6",
    EBB_TASK_GROUP_CONCURRENCY: "2", EBB_STOP_CHECK_INTERVAL_MS: "100", EBB_HEARTBEAT_INTERVAL_MS: "500",
    EBB_DEAD_WORKER_TIMEOUT_MS: "5000",
  });
  service = await startService(config, createLogger("silent"), { extraKinds: [testSleepKind] });
});
after(async () => {
  await service?.stop("test done");
});

const ended = (id: number) =>
  waitFor(`execution ${id} to end`, async () => (await q("select * from ebb.executions where id = $1 and status not in ('pending', 'running')", [id]))[0]);

test("an execution runs its tasks: success, a permanent failure, a transient one retried; status, counts and logs are queryable", async () => {
  await q("insert into public.test_kind_targets (target_id, tasks, batch, fail) values (1, 5, 2, 'permanent:task-1')");
  const id = await triggerExecution(service.ctx, { kind: "test_sleep", targetId: 1 });
  const e = await ended(id);
  assert.equal(e.status, "error", "one task failed for good: Harbor's aggregate is error");
  assert.equal(e.trigger, "manual");
  assert.ok(e.started_at && e.ended_at && e.ended_at >= e.started_at);
  const tasks = await q("select key, status, attempts, error, total, retained, deleted from ebb.tasks where execution_id = $1 order by key", [id]);
  assert.equal(tasks.length, 5);
  const failed = tasks.find((t) => t.key === "task-1");
  assert.deepEqual([failed.status, failed.attempts, failed.error], ["error", 1, "task-1 cannot be processed"], "permanent: no retry");
  assert.ok(tasks.filter((t) => t.key !== "task-1").every((t) => t.status === "success" && t.deleted === 2));
  const summary = (await q("select * from ebb.execution_summary where id = $1", [id]))[0];
  assert.equal(summary.tasks, 5);
  assert.equal(summary.tasks_failed, 1);
  assert.equal(summary.tasks_succeeded, 4);
  assert.equal(summary.open_tasks, 0);
  assert.equal(Number(summary.deleted), 8);
  assert.equal(Number(e.deleted), 8, "aggregates stored on the execution when it ended");
  const logs = await q("select l.level, l.message from ebb.task_logs l join ebb.tasks t on t.id = l.task_id where t.execution_id = $1 and t.key = 'task-0' order by l.id", [id]);
  assert.deepEqual(logs.map((l) => l.message.replace(/ pid \d+/, "")), ["start task-0 attempt 1", "done task-0"]);

  await q("insert into public.test_kind_targets (target_id, tasks, fail) values (2, 2, 'transient:task-0')");
  const retried = await triggerExecution(service.ctx, { kind: "test_sleep", targetId: 2, dryRun: true });
  const r = await ended(retried);
  assert.equal(r.status, "success", "the transient failure was retried");
  assert.equal(r.dry_run, true);
  const t0 = (await q("select attempts, status from ebb.tasks where execution_id = $1 and key = 'task-0'", [retried]))[0];
  assert.deepEqual(t0, { attempts: 2, status: "success" });
  const runs = await q("select count(*)::int as n from public.test_task_runs where execution_id = $1", [retried]);
  assert.equal(runs[0].n, 2, "each task ran to completion once");
});

test("status is monotonic: an ended execution or task cannot go back", async () => {
  const [e] = await q("select id from ebb.executions where status = 'error' limit 1");
  await assert.rejects(q("update ebb.executions set status = 'running' where id = $1", [e.id]), /executions\.status: cannot go from error to running/);
  const [t] = await q("select id from ebb.tasks where status = 'success' limit 1");
  await assert.rejects(q("update ebb.tasks set status = 'pending' where id = $1", [t.id]), /tasks\.status: cannot go from success to pending/);
});

test("stop by plain SQL during running tasks: they stop at a checkpoint, unstarted ones never start", async () => {
  await q("insert into public.test_kind_targets (target_id, tasks, sleep_ms) values (3, 20, 30000)");
  const id = await triggerExecution(service.ctx, { kind: "test_sleep", targetId: 3 });
  await waitFor("tasks running", async () => (await q("select count(*)::int as n from ebb.tasks where execution_id = $1 and status = 'running'", [id]))[0].n >= 6);
  await sleep(300);
  const t0 = Date.now();
  await q("update ebb.executions set stop_requested = true where id = $1", [id]);
  const e = await ended(id);
  const took = Date.now() - t0;
  assert.equal(e.status, "stopped");
  assert.ok(took < 3000, `stopped in ${took} ms`);
  const tasks = await q("select status, error, total from ebb.tasks where execution_id = $1", [id]);
  assert.ok(tasks.every((t) => t.status === "stopped"));
  const interrupted = tasks.filter((t) => t.error === "stop requested");
  assert.ok(interrupted.length >= 6 && interrupted.every((t) => t.total > 0), "running tasks stopped mid-work, partial counts saved");
  const starts = await q("select count(distinct task_id)::int as n from public.test_task_starts s join ebb.tasks t on t.id = s.task_id where t.execution_id = $1", [id]);
  assert.ok(starts[0].n <= 8, `only the running tasks had started (${starts[0].n})`);
  const runs = await q("select count(*)::int as n from public.test_task_runs where execution_id = $1", [id]);
  assert.equal(runs[0].n, 0, "no stopped task ran to completion");
  assert.equal(await requestStop(service.ctx, id), "already_ended");
  assert.equal(await requestStop(service.ctx, 999_999), "not_found");
});

test("per-group concurrency: at most taskGroupConcurrency tasks of one group run at once", async () => {
  await q("insert into public.test_kind_targets (target_id, tasks, task_group, sleep_ms) values (4, 8, 'registry-1', 400)");
  const id = await triggerExecution(service.ctx, { kind: "test_sleep", targetId: 4 });
  assert.equal((await ended(id)).status, "success");
  const runs = await q<{ s: Date; e: Date }>("select started_at as s, at as e from public.test_task_runs where execution_id = $1", [id]);
  assert.equal(runs.length, 8);
  let peak = 0;
  for (const r of runs) peak = Math.max(peak, runs.filter((o) => o.s <= r.s && o.e > r.s).length);
  assert.ok(peak <= 2, `peak ${peak} concurrent tasks in one group`);
  assert.ok(peak === 2, "and the group does use its 2 slots");
});

test("a manual trigger of an unknown kind or a bad target is refused", async () => {
  await assert.rejects(triggerExecution(service.ctx, { kind: "gardening", targetId: 1 }), /execution_kinds|foreign key/);
  await assert.rejects(triggerExecution(service.ctx, { kind: "test_sleep", targetId: -1 }), /targetId: must be a positive whole number/);
});

test("history pruning keeps the newest N per target, everything recent, and every open execution", async () => {
  // target 100: 80 ended executions, one per day back from today; 3 old ones still open
  await q(`insert into ebb.executions (kind, target_id, trigger, status, created_at, ended_at, planned)
           select 'test_sleep', 100, 'manual', 'success', now() - d * interval '1 day', now() - d * interval '1 day', true
             from generate_series(79, 0, -1) d`);
  await q(`insert into ebb.executions (kind, target_id, trigger, status, created_at, enqueued)
           select 'test_sleep', 100, 'manual', 'pending', now() - interval '200 days', false from generate_series(1, 3)`);
  // target 101: 5 ended long ago: fewer than N, all kept
  await q(`insert into ebb.executions (kind, target_id, trigger, status, created_at, ended_at, planned)
           select 'test_sleep', 101, 'manual', 'error', now() - interval '400 days', now() - interval '400 days', true from generate_series(1, 5)`);
  const before = await q("select id from ebb.executions where target_id = 100 order by id desc");
  // a task and a decision under the oldest ended execution (pruned) and the newest (kept)
  const [oldest] = await q("select id from ebb.executions where target_id = 100 and status = 'success' order by id limit 1");
  for (const id of [oldest.id, before[0].id]) {
    const [t] = await q("insert into ebb.tasks (execution_id, key, status) values ($1, 'r', 'success') returning id", [id]);
    await q(`insert into ebb.decisions (execution_id, task_id, repository_id, repository, digest, action, reason, role, outcome)
             values ($1, $2, 1, 'p/r', 'sha256:' || repeat('a', 64), 'retain', 'kept', 'candidate', 'none')`, [id, t.id]);
  }
  const deleted = await pruneHistory(db.pool, { keepLast: 10, keepDays: 30, batchSize: 7 });
  // the pruned execution's tasks and decisions went with it; the kept one's are there
  assert.deepEqual((await q("select execution_id from ebb.decisions")).map((d) => d.execution_id), [before[0].id]);
  assert.deepEqual((await q("select execution_id from ebb.tasks where key = 'r'")).map((d) => d.execution_id), [before[0].id]);
  const left = await q("select id, status, ended_at from ebb.executions where target_id = 100 order by id desc");
  // newest 10 by id are the 3 open ones and the 7 most recent ended; besides those, ended
  // within 30 days are kept: days 0..29 -> 30 ended in total + 3 open
  assert.equal(left.filter((e) => e.status === "pending").length, 3, "open executions survive");
  assert.equal(left.filter((e) => e.status === "success").length, 30);
  assert.ok(left.filter((e) => e.status === "success").every((e) => Date.now() - e.ended_at.getTime() < 31 * 86_400_000));
  assert.equal(deleted, 50);
  assert.deepEqual(left.slice(0, 10).map((e) => e.id), before.slice(0, 10).map((e) => e.id), "the newest 10 survive");
  assert.equal((await q("select count(*)::int as n from ebb.executions where target_id = 101"))[0].n, 5);
});
