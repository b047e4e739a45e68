// /metrics execution gauges read from SQL at scrape time: values equal what the tables say;
// a database that cannot answer leaves the scrape working with ebb_metrics_sql_up 0.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadConfig } from "../../src/config/load.js";
import { createKysely } from "../../src/db/kysely.js";
import { createPool } from "../../src/db/pool.js";
import { registerMetricsRoute } from "../../src/http/metrics_route.js";
import { startHttp } from "../../src/http/server.js";
import { createLogger } from "../../src/log/logger.js";
import { registerExecutionMetrics } from "../../src/metrics/execution_metrics.js";
import type { AppContext } from "../../src/service/context.js";
import { databaseUrl, freshDatabase } from "../support/db.js";
import { waitFor } from "../support/wait_for.js";
import { seedHistory } from "../cli/support/history_seed.js";

/** name{labels} -> value, from the Prometheus text format (also checks every sample line parses). */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    // prom-client writes a NaN gauge as "Nan" (Node 24's event-loop histogram before its first sample); Prometheus parses NaN in any case
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.e+-]+|[Nn][Aa][Nn]|[+-]Inf)$/.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

async function serve(t: import("node:test").TestContext, pool: import("pg").Pool, url: string, snapshotTtlMs?: number) {
  const config = loadConfig({ DATABASE_URL: url, EBB_HTTP_PORT: "0" });
  // the gauges never use graphile-worker's utils (and they would need a working database)
  const ctx: AppContext = { config, pool, db: createKysely(pool), workerUtils: undefined as never, logger: createLogger("silent") };
  registerExecutionMetrics(ctx, { snapshotTtlMs });
  const http = await startHttp(ctx, [registerMetricsRoute]);
  t.after(async () => {
    await http.stop();
  });
  return async () => {
    const res = await fetch(`${http.url}/metrics`);
    assert.equal(res.status, 200);
    return parseMetrics(await res.text());
  };
}

test("execution, decision, schedule, worker and stale gauges equal the SQL truth", async (t) => {
  const db = await freshDatabase(t);
  const seeded = await seedHistory(db.pool);
  const scrape = await serve(t, db.pool, db.url, 200);
  const m = await scrape();
  assert.equal(m.get('ebb_metrics_sql_up'), 1);
  assert.equal(m.get('ebb_executions{kind="retention",status="success"}'), 1);
  assert.equal(m.get('ebb_executions{kind="retention",status="running"}'), 1);
  assert.equal(m.get('ebb_executions{kind="retention",status="pending"}'), 1);
  assert.equal(m.get('ebb_executions{kind="retention",status="error"}'), 0);
  assert.equal(m.get('ebb_executions{kind="sync",status="error"}'), 1);
  // tasks of open executions only: the running execution's 3 tasks
  assert.equal(m.get('ebb_open_execution_tasks{kind="retention",status="running"}'), 1);
  assert.equal(m.get('ebb_open_execution_tasks{kind="retention",status="pending"}'), 1);
  assert.equal(m.get('ebb_open_execution_tasks{kind="retention",status="success"}'), 1);
  assert.equal(m.get('ebb_retention_decisions{action="delete",outcome="deleted"}'), 2);
  assert.equal(m.get('ebb_retention_decisions{action="delete",outcome="failed"}'), 1);
  assert.equal(m.get('ebb_retention_decisions{action="retain",outcome="none"}'), undefined, "retained counts come from ebb_execution_artifacts");
  assert.equal(m.get('ebb_execution_artifacts{kind="retention",count="retained"}'), 6);
  assert.equal(m.get('ebb_execution_artifacts{kind="retention",count="deleted"}'), 2);
  assert.equal(m.get('ebb_execution_artifacts{kind="retention",count="total"}'), 8);
  assert.equal(m.get('ebb_workers{state="alive"}'), 1);
  assert.equal(m.get('ebb_workers{state="silent"}'), 1);
  assert.equal(m.get("ebb_stale_repositories"), 1);
  assert.equal(m.get('ebb_schedules{state="due"}'), 1);
  const lag = m.get("ebb_scheduler_lag_seconds")!;
  assert.ok(lag >= 119 && lag < 180, `scheduler lag ${lag}`);

  // a change in SQL shows at the next scrape once the snapshot is older than its TTL
  await db.pool.query("update ebb.executions set stop_requested = true where id = $1", [seeded.pending]);
  await db.pool.query("update ebb.schedules set next_due_at = now() + interval '1 hour'");
  const m2 = await waitFor("a scrape to show the rescheduled schedule", async () => {
    const m = await scrape();
    return m.get("ebb_scheduler_lag_seconds") === 0 ? m : undefined;
  }, 30_000, 50);
  assert.equal(m2.get('ebb_executions{kind="retention",status="pending"}'), 1, "a pending execution with a job stays pending until the plan job sees the stop");
  assert.equal(m2.get("ebb_scheduler_lag_seconds"), 0);
  assert.equal(m2.get('ebb_schedules{state="due"}'), 0);
});

test("within its TTL one snapshot serves every scrape: a change in SQL shows only in the next snapshot", async (t) => {
  const db = await freshDatabase(t);
  await seedHistory(db.pool);
  const scrape = await serve(t, db.pool, db.url, 3_600_000);
  assert.equal((await scrape()).get('ebb_schedules{state="due"}'), 1);
  await db.pool.query("update ebb.schedules set next_due_at = now() + interval '1 hour'");
  assert.equal((await scrape()).get('ebb_schedules{state="due"}'), 1, "the second scrape reuses the first snapshot");
});

test("a database that cannot answer: the scrape still works and says ebb_metrics_sql_up 0", async (t) => {
  const url = databaseUrl("ebb_no_such_database_for_metrics");
  const pool = createPool({ connectionString: url, max: 2, role: "test" });
  t.after(() => pool.end());
  const scrape = await serve(t, pool, url);
  const m = await scrape();
  assert.equal(m.get("ebb_metrics_sql_up"), 0);
  assert.equal(m.get('ebb_workers{state="alive"}'), undefined);
  assert.ok([...m.keys()].some((k) => k.startsWith("ebb_process_")), "process metrics still served");
});
