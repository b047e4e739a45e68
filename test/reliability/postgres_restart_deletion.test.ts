// PostgreSQL restarted while a REAL retention execution (not a dry run) is deleting manifests
// from a REAL docker-registry: one `ebb start` process (scheduler, worker, http) on a private
// PostgreSQL server; every registry call goes through the fault proxy, which slows each
// DELETE so that the restart lands in the middle of the deletions. What the test checks is
// what a user would check afterwards: the process is the same one, no execution is left
// running, every manifest the rules retain still answers 200 in the registry (and was never
// even sent a DELETE), every decision row agrees with the registry, the counts agree with the
// rows, and a re-run completes.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { migrate } from "../../src/db/migrate.js";
import { createPool } from "../../src/db/pool.js";
import { spawnEbb, type EbbProcess } from "../support/ebb_process.js";
import { pullManifest, pushImage, type PushedImage } from "../support/oci_push.js";
import { startPrivatePostgres, type PrivatePostgres } from "../support/private_postgres.js";
import { startFaultProxy, type FaultProxy } from "../support/registry_fault_proxy.js";
import { registrySkipReason, startRegistry, type TestRegistry } from "../support/registry.js";
import { waitFor } from "../support/wait_for.js";

const skip = registrySkipReason();
let server: PrivatePostgres;
let reg: TestRegistry;
let proxy: FaultProxy;

before(async () => {
  if (skip) return;
  reg = await startRegistry();
  proxy = await startFaultProxy(reg.url);
});
after(async () => {
  await proxy?.stop();
  await reg?.stop();
});

/** A query for polling across the outage: an error (server down) means "not yet". */
function tolerant(pool: pg.Pool) {
  return async <T = any>(sql: string, params: unknown[] = []): Promise<T[] | undefined> => {
    try {
      return (await pool.query(sql, params)).rows as T[];
    } catch {
      return undefined;
    }
  };
}

async function present(repo: string, digest: string): Promise<boolean> {
  const r = await pullManifest(reg, repo, digest); // straight to the registry, not the proxy
  if (r.status !== 200 && r.status !== 404) throw new Error(`unexpected ${r.status} for ${repo}@${digest}`);
  return r.status === 200;
}

const deletesOf = (digest: string) => proxy.requests.filter((r) => r.method === "DELETE" && r.path.endsWith(`/manifests/${digest}`)).length;

test("PostgreSQL restarted mid-deletion of a real retention run: the same ebb process recovers, nothing stays running, every retained manifest survives, decisions and counts agree with the registry, a re-run completes", { skip, timeout: 240_000 }, async (t) => {
  server = await startPrivatePostgres(); // its after() hook belongs to the test, not to before()
  const setup = createPool({ connectionString: server.url, max: 2, role: "test" });
  await migrate(setup);
  const [{ id: registryId }] = (await setup.query("insert into ebb.registries (name, base_url) values ('local', $1) returning id", [proxy.url])).rows;

  // two repositories of project "team" (in scope) and one of project "other" (out of scope)
  const repos = ["team/api", "team/web"];
  const images = new Map<string, PushedImage[]>();
  for (const repo of repos) {
    const list: PushedImage[] = [];
    for (let i = 1; i <= 18; i++) list.push(await pushImage(reg, repo, { tag: i % 6 === 0 ? `keep-${i}` : `v${i}` }));
    images.set(repo, list);
  }
  const outside = await pushImage(reg, "other/app", { tag: "v1" });

  await setup.end();
  const ebb: EbbProcess = spawnEbb(["start"], {
    DATABASE_URL: server.url, EBB_ROLES: "scheduler,worker,http", EBB_HTTP_PORT: "0", EBB_MIGRATE: "false",
    EBB_POOL_SIZE: "8", EBB_WORKER_CONCURRENCY: "4", EBB_LOG_LEVEL: "info",
    EBB_HEARTBEAT_INTERVAL_MS: "500", EBB_DEAD_WORKER_TIMEOUT_MS: "5000", EBB_STOP_CHECK_INTERVAL_MS: "100",
  });
  const ready = await ebb.waitForReady();
  const pid = ebb.child.pid;
  const alive = (what: string) =>
    assert.ok(ebb.child.exitCode === null && ebb.child.signalCode === null && ebb.child.pid === pid,
      `${what}: ebb exited (${ebb.child.exitCode ?? ebb.child.signalCode}); stderr:\n${ebb.stderr().slice(-3000)}`);

  let pool = createPool({ connectionString: server.url, max: 2, role: "test" });
  let q = tolerant(pool);
  const must = async <T = any>(sql: string, params: unknown[] = []) => (await pool.query(sql, params)).rows as T[];
  const finished = (id: number) => waitFor(`execution ${id} to end`, async () => {
    if (ebb.child.exitCode !== null) throw new Error(`ebb exited: ${ebb.stderr().slice(-3000)}`);
    return (await q("select * from ebb.executions where id = $1 and status not in ('pending', 'running')", [id]))?.[0];
  }, 120_000, 200);

  // read the registry into the catalog; push times as notifications would have recorded them
  const [{ id: syncId }] = await must("select ebb.trigger_execution('sync', $1, false) as id", [registryId]);
  assert.equal((await finished(syncId)).status, "success");
  for (const [repo, list] of images) {
    for (const [i, img] of list.entries()) {
      await must(`update ebb.artifacts a set pushed_at = now() - $3 * interval '1 hour', pushed_at_source = 'event'
                    from ebb.repositories r where r.id = a.repository_id and r.name = $1 and a.digest = $2`,
        [repo, img.digest, list.length - i]);
    }
  }
  // keep the 4 newest, and everything tagged keep-*; the rest of a touched repository goes
  const [{ id: policyId }] = await must(
    `insert into ebb.policies (name, registry_id, scope) values ('nightly', $1, '{"projects": [{"kind": "glob", "pattern": "team"}]}') returning id`,
    [registryId]);
  await must(
    `insert into ebb.policy_rules (policy_id, template, params, tag_selectors) values
       ($1, 'latestPushedK', '{"latestPushedK": 4}', '[{"kind": "glob", "decoration": "matches", "pattern": "**"}]'),
       ($1, 'always', '{}', '[{"kind": "glob", "decoration": "matches", "pattern": "keep-*"}]')`,
    [policyId]);
  const retained = new Map<string, string[]>();
  const doomed = new Map<string, string[]>();
  for (const [repo, list] of images) {
    const keep = list.filter((img, i) => i >= list.length - 4 || (i + 1) % 6 === 0);
    retained.set(repo, keep.map((k) => k.digest));
    doomed.set(repo, list.filter((img) => !keep.includes(img)).map((k) => k.digest));
  }
  assert.equal([...doomed.values()].flat().length, 2 * 12);

  // each DELETE takes 700 ms at the registry: 24 deletions, 4 at a time per repository
  proxy.inject((m) => m === "DELETE", { kind: "delay", ms: 700 });
  const [{ id }] = await must("select ebb.trigger_execution('retention', $1, false) as id", [policyId]);
  await waitFor("the first deletions to be recorded", async () =>
    ((await q("select count(*)::int as n from ebb.decisions where execution_id = $1 and outcome = 'deleted'", [id]))?.[0]?.n ?? 0) >= 2, 60_000, 50);
  const deletesBefore = proxy.requests.filter((r) => r.method === "DELETE").length;

  // the restart: fast shutdown (every session terminated, DELETEs still in flight), 2 s down
  await pool.end();
  await server.stop();
  const inFlightAtStop = proxy.inFlight();
  await waitFor("/readyz to report the database gone", async () =>
    (await fetch(`${String(ready.http)}/readyz`)).status === 503, 10_000, 100);
  await sleep(2000);
  alive("during the outage");
  await server.start();
  pool = createPool({ connectionString: server.url, max: 2, role: "test" });
  q = tolerant(pool);

  const done = await finished(id);
  alive("after the restart");
  const tasks = await must("select key, status, attempts, error, total, retained, deleted, errors from ebb.tasks where execution_id = $1 order by key", [id]);
  assert.ok(["success", "error"].includes(done.status), `execution ended ${done.status}: ${done.error}; tasks ${JSON.stringify(tasks)}`);
  assert.deepEqual(tasks.map((t) => t.key), repos, "one task per repository in scope, none for other/app");
  assert.equal((await must("select count(*)::int as n from ebb.executions where status in ('pending', 'running')"))[0].n, 0, "no execution stays running");
  assert.equal((await must("select count(*)::int as n from ebb.tasks where status in ('pending', 'running')"))[0].n, 0, "no task stays running");
  assert.ok(deletesBefore < 24, `the restart landed mid-deletion (${deletesBefore} DELETEs before it, ${inFlightAtStop} in flight)`);

  // what a user checks: the registry itself
  for (const [repo, keep] of retained) {
    for (const d of keep) {
      assert.ok(await present(repo, d), `${repo}@${d} is retained by the rules and must still be in the registry`);
      assert.equal(deletesOf(d), 0, `no DELETE was ever sent for retained ${repo}@${d}`);
    }
  }
  assert.ok(await present("other/app", outside.digest), "the repository out of scope is untouched");

  // decisions: one row per artifact, each agreeing with the registry; counts agree with rows
  const checkDecisions = async (executionId: number, expectPending: boolean) => {
    const rows = await must("select r.name as repo, d.digest, d.action, d.outcome, d.error, d.task_id from ebb.decisions d join ebb.repositories r on r.id = d.repository_id where d.execution_id = $1", [executionId]);
    const seen = new Set<string>();
    for (const row of rows) {
      const key = `${row.repo}@${row.digest}`;
      assert.ok(!seen.has(key), `one decision per artifact (${key} twice)`);
      seen.add(key);
      if (row.action === "retain") assert.ok(retained.get(row.repo)!.includes(row.digest), `${key} retained by the rules`);
      else assert.equal(row.action, "delete", key);
      if (row.outcome === "deleted" || row.outcome === "already_deleted") assert.equal(await present(row.repo, row.digest), false, `${key} recorded ${row.outcome}`);
      if (row.outcome === "pending" || row.outcome === "failed") assert.ok(expectPending, `${key} left ${row.outcome}: ${row.error}`);
    }
    for (const t of await must("select id, total, retained, deleted, errors from ebb.tasks where execution_id = $1", [executionId])) {
      const mine = rows.filter((r) => r.task_id === t.id);
      assert.deepEqual(
        [t.total, t.retained, t.deleted, t.errors],
        [mine.length, mine.filter((r) => r.action === "retain").length,
         mine.filter((r) => r.action === "delete" && ["deleted", "already_deleted"].includes(r.outcome)).length,
         mine.filter((r) => r.outcome === "failed").length],
        `task ${t.id} counts agree with its decision rows`);
    }
    return rows;
  };
  const first = await checkDecisions(id, done.status === "error");
  const firstDeleted = first.filter((r) => r.outcome === "deleted" || r.outcome === "already_deleted").length;
  t.diagnostic(`restart after ${deletesBefore} DELETEs (${inFlightAtStop} in flight); first execution ${done.status}: ` +
    `${JSON.stringify(tasks.map((x) => [x.key, x.status, x.attempts, x.deleted, x.error]))}; outcomes ` +
    JSON.stringify(first.reduce((m: Record<string, number>, r) => ({ ...m, [r.outcome]: (m[r.outcome] ?? 0) + 1 }), {})));

  // the re-run converges: it deletes what the first left and nothing retained
  proxy.clear();
  const [{ id: again }] = await must("select ebb.trigger_execution('retention', $1, false) as id", [policyId]);
  const second = await finished(again);
  assert.equal(second.status, "success", JSON.stringify(await must("select key, status, error from ebb.tasks where execution_id = $1", [again])));
  const rerun = await checkDecisions(again, false);
  assert.equal(rerun.filter((r) => r.action === "delete").length, 24 - firstDeleted, "the re-run deletes exactly what the first did not");
  for (const [repo, gone] of doomed) for (const d of gone) assert.equal(await present(repo, d), false, `${repo}@${d} is gone after the re-run`);
  for (const [repo, keep] of retained) for (const d of keep) assert.ok(await present(repo, d), `${repo}@${d} survives the re-run`);

  alive("at the end");
  assert.ok(!ebb.logs.some((l) => typeof l.msg === "string" && l.msg.startsWith("fatal error")), "no fatal error");
  await pool.end();
  ebb.child.kill("SIGTERM");
  assert.equal((await ebb.exited).code, 0, ebb.stderr().slice(-3000));
});
