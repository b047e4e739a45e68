// Following an execution (--wait) against real PostgreSQL: the progress bar on a TTY counts
// tasks done / total and deletions as the rows change; without a live worker the wait ends
// with no_worker; an interrupted wait leaves the execution alone.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { followExecution } from "../../src/cli/output/execution_progress.js";
import { freshDatabase } from "../support/db.js";
import { waitFor } from "../support/wait_for.js";

/** A stream that says it is a terminal and keeps what is written (escape codes stripped). */
function fakeTty(): { stream: NodeJS.WriteStream; text(): string } {
  let buf = "";
  const stream = new Writable({ write(chunk, _enc, cb) { buf += chunk.toString(); cb(); } }) as unknown as NodeJS.WriteStream;
  Object.assign(stream, { isTTY: true, columns: 120 });
  // eslint-disable-next-line no-control-regex
  return { stream, text: () => buf.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "\n") };
}

test("progress follows tasks and deletions to the end; no worker and interrupt end the wait", async (t) => {
  const db = await freshDatabase(t);
  const { q } = db;
  const [{ id: registryId }] = await q("insert into ebb.registries (name, base_url) values ('r', 'http://127.0.0.1:9') returning id");
  const [{ id: repoId }] = await q("insert into ebb.repositories (registry_id, name) values ($1, 'a/b') returning id", [registryId]);
  const [{ id: policyId }] = await q("insert into ebb.policies (name, registry_id) values ('p', $1) returning id", [registryId]);
  await q("insert into ebb.worker_heartbeats (pool_id, hostname, pid) values ('w', 'h', 1)");

  await t.test("bar: done/total and deletions as they happen, final status", async () => {
    const [{ id }] = await q("insert into ebb.executions (kind, target_id, trigger, status, started_at) values ('retention', $1, 'manual', 'running', now()) returning id", [policyId]);
    const tasks = [];
    for (const key of ["a/b", "a/c", "a/d"]) tasks.push((await q("insert into ebb.tasks (execution_id, key) values ($1, $2) returning id", [id, key]))[0].id);
    const tty = fakeTty();
    const following = followExecution(db.pool, id, { pollMs: 30, workerAliveMs: 60_000, noWorkerAfterMs: 60_000, out: tty.stream });
    const step = () => new Promise((r) => setTimeout(r, 150));
    await step();
    await q("update ebb.executions set planned = true where id = $1", [id]);
    await q("update ebb.tasks set status = 'success', ended_at = now() where id = $1", [tasks[0]]);
    for (const d of ["sha256:1", "sha256:2"]) {
      await q(`insert into ebb.decisions (execution_id, task_id, repository_id, repository, digest, action, reason, role, outcome)
               values ($1, $2, $3, 'a/b', $4, 'delete', 'x', 'candidate', 'deleted')`, [id, tasks[1], repoId, d]);
    }
    // the bar redraws every poll (30 ms); a loaded machine may take longer to get there
    await waitFor("the bar to show 1/3 and 2 deletions", () => /1\/3 repositories \| 2 deleted \| running/.test(tty.text()), 10_000, 20);
    await q("update ebb.tasks set status = 'success', ended_at = now() where execution_id = $1", [id]);
    await q("update ebb.executions set status = 'success', ended_at = now() where id = $1", [id]);
    const result = await following;
    assert.equal(result.end, "ended");
    assert.equal(result.end === "ended" && result.status, "success");
    assert.match(tty.text(), /3\/3 repositories \| 2 deleted \| success/);
  });

  await t.test("no live worker: the wait ends with no_worker after the timeout, execution untouched", async () => {
    await q("update ebb.worker_heartbeats set last_seen_at = now() - interval '1 hour'");
    const [{ id }] = await q("insert into ebb.executions (kind, target_id, trigger) values ('retention', $1, 'manual') returning id", [policyId]);
    const started = Date.now();
    const result = await followExecution(db.pool, id, { pollMs: 50, workerAliveMs: 60_000, noWorkerAfterMs: 400, bar: false, out: fakeTty().stream });
    assert.equal(result.end, "no_worker");
    assert.ok(Date.now() - started < 5000);
    assert.deepEqual(await q("select status, stop_requested from ebb.executions where id = $1", [id]), [{ status: "pending", stop_requested: false }]);
  });

  await t.test("a worker that comes back keeps the wait going; abort ends it as interrupted", async () => {
    const [{ id }] = await q("insert into ebb.executions (kind, target_id, trigger) values ('retention', $1, 'manual') returning id", [policyId]);
    await q("update ebb.worker_heartbeats set last_seen_at = now()");
    const abort = new AbortController();
    const lines = fakeTty();
    const following = followExecution(db.pool, id, { pollMs: 50, workerAliveMs: 60_000, noWorkerAfterMs: 200, bar: false, out: lines.stream, signal: abort.signal });
    await new Promise((r) => setTimeout(r, 600));
    abort.abort();
    const result = await following;
    assert.equal(result.end, "interrupted", "a live worker means waiting, not giving up");
    assert.match(lines.text(), new RegExp(`execution ${id}: pending, 0/0\\+ repositories, 0 deleted`));
  });
});
