// The read-only JSON API against real PostgreSQL: what it returns is what SQL says, bad
// parameters are 400 naming the parameter, unknown executions 404, no credentials anywhere.
import { test } from "node:test";
import assert from "node:assert/strict";
import { makeWorkerUtils } from "graphile-worker";
import { loadConfig } from "../../src/config/load.js";
import { createKysely } from "../../src/db/kysely.js";
import { WORKER_SCHEMA } from "../../src/db/migrate.js";
import { registerApiRoutes } from "../../src/http/api_routes.js";
import { startHttp } from "../../src/http/server.js";
import { createLogger } from "../../src/log/logger.js";
import type { AppContext } from "../../src/service/context.js";
import { freshDatabase } from "../support/db.js";
import { SECRET_REF, seedHistory } from "../cli/support/history_seed.js";

const API_TOKEN = "api-routes-test-token-0123";

test("GET /api/executions, /api/executions/:id and /decisions return what SQL says", async (t) => {
  const db = await freshDatabase(t);
  const seeded = await seedHistory(db.pool);
  const config = loadConfig({ DATABASE_URL: db.url, EBB_HTTP_PORT: "0", EBB_API_TOKEN: API_TOKEN });
  const workerUtils = await makeWorkerUtils({ pgPool: db.pool, schema: WORKER_SCHEMA });
  const ctx: AppContext = { config, pool: db.pool, db: createKysely(db.pool), workerUtils, logger: createLogger("silent") };
  const http = await startHttp(ctx, [registerApiRoutes]);
  t.after(async () => {
    await http.stop();
    await workerUtils.release();
  });
  const bodies: string[] = [];
  const get = async (path: string) => {
    const res = await fetch(`${http.url}${path}`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
    const text = await res.text();
    bodies.push(text);
    return { status: res.status, body: JSON.parse(text) as any };
  };

  // list: newest first, live counts equal to execution_summary
  const list = await get("/api/executions?limit=10");
  assert.equal(list.status, 200);
  const { rows: summary } = await db.pool.query("select id, status, tasks::int, open_tasks::int, deleted::int, retained::int from ebb.execution_summary order by id desc");
  assert.deepEqual(
    list.body.executions.map((e: any) => ({ id: e.id, status: e.status, tasks: e.tasks, open_tasks: e.open_tasks, deleted: e.deleted, retained: e.retained })),
    summary,
  );
  const byId = new Map<number, any>(list.body.executions.map((e: any) => [e.id, e]));
  assert.equal(byId.get(seeded.done).target_name, "keep-recent");
  assert.equal(byId.get(seeded.failed).target_name, "local");
  assert.equal(byId.get(seeded.failed).error, "planning failed: registry said 401");
  assert.equal(byId.get(seeded.running).tasks, 3);
  assert.equal(byId.get(seeded.running).open_tasks, 2);

  // filters and paging
  assert.deepEqual((await get("/api/executions?status=running")).body.executions.map((e: any) => e.id), [seeded.running]);
  assert.deepEqual((await get("/api/executions?kind=sync")).body.executions.map((e: any) => e.id), [seeded.failed]);
  assert.deepEqual((await get("/api/executions?limit=2")).body.executions.map((e: any) => e.id), [seeded.pending, seeded.failed]);
  assert.deepEqual((await get(`/api/executions?limit=2&before=${seeded.failed}`)).body.executions.map((e: any) => e.id), [seeded.running, seeded.done]);

  // detail: tasks, counts by status, decisions summary, the policy as applied
  const detail = await get(`/api/executions/${seeded.done}`);
  assert.equal(detail.status, 200);
  assert.equal(detail.body.execution.status, "success");
  assert.equal(detail.body.execution.deleted, 2);
  assert.equal(detail.body.execution.errors, 1);
  assert.deepEqual(detail.body.task_counts, { pending: 0, running: 0, success: 2, error: 0, stopped: 0 });
  assert.deepEqual(detail.body.tasks.map((x: any) => x.key).sort(), ["team/app", "team/web"]);
  assert.deepEqual(detail.body.decisions, [
    { action: "delete", outcome: "deleted", count: 2 },
    { action: "delete", outcome: "failed", count: 1 },
    { action: "retain", outcome: "none", count: 3 },
  ]);
  assert.equal(detail.body.retention.policy_name, "keep-recent");
  const running = await get(`/api/executions/${seeded.running}?tasks=1`);
  assert.deepEqual(running.body.task_counts, { pending: 1, running: 1, success: 1, error: 0, stopped: 0 });
  assert.equal(running.body.tasks.length, 1);
  assert.equal(running.body.tasks[0].status, "running", "open work is listed before finished tasks");

  // decisions: filtered by action, paged by id
  const deletes = await get(`/api/executions/${seeded.done}/decisions?action=delete`);
  assert.equal(deletes.status, 200);
  const { rows: sqlDeletes } = await db.pool.query(
    "select digest, outcome, error from ebb.decisions where execution_id = $1 and action = 'delete' order by id", [seeded.done]);
  assert.deepEqual(deletes.body.decisions.map((d: any) => ({ digest: d.digest, outcome: d.outcome, error: d.error })), sqlDeletes);
  assert.equal(deletes.body.next_after, null);
  const page1 = await get(`/api/executions/${seeded.done}/decisions?limit=4`);
  assert.equal(page1.body.decisions.length, 4);
  const page2 = await get(`/api/executions/${seeded.done}/decisions?limit=4&after=${page1.body.next_after}`);
  assert.deepEqual([...page1.body.decisions, ...page2.body.decisions].map((d: any) => d.digest),
    ["sha256:a1", "sha256:a2", "sha256:a3", "sha256:a4", "sha256:a5", "sha256:a6"]);
  assert.equal(page2.body.next_after, null);
  assert.deepEqual((await get(`/api/executions/${seeded.done}/decisions?outcome=failed`)).body.decisions.map((d: any) => d.error), ["registry: HTTP 500"]);

  // bad parameters name the parameter; unknown ids are 404
  const bad: [string, number, RegExp][] = [
    ["/api/executions?limit=0", 400, /^limit: must be a whole number between 1 and 1000/],
    ["/api/executions?limit=abc", 400, /^limit:/],
    ["/api/executions?status=done", 400, /^status: must be one of pending, running, success, error, stopped/],
    ["/api/executions/abc", 400, /^id: must be an execution id/],
    [`/api/executions/${seeded.done}/decisions?action=remove`, 400, /^action: must be one of retain, protected, delete, untag, error/],
    ["/api/executions/999999", 404, /execution 999999: no such execution/],
    ["/api/executions/999999/decisions", 404, /execution 999999: no such execution/],
  ];
  for (const [path, status, message] of bad) {
    const r = await get(path);
    assert.equal(r.status, status, path);
    assert.match(r.body.error, message, path);
  }

  // the registry's credentials_ref never leaves the database
  for (const body of bodies) assert.ok(!body.includes(SECRET_REF.slice(4)), "credentials_ref must not appear in API output");
});
