// The faults run (issue 7, long version of test/reliability/*): two real ebb processes on a
// restartable private PostgreSQL, a real docker-registry behind the fault proxy, and for N
// minutes, cycle after cycle:
//   1. new images are pushed (straight to the registry) into every repository;
//   2. a sync reads them (registry faults: one repository's tag list answers 500 until the
//      client gives up -> STALE; dropped connections on manifest reads; every 2nd cycle
//      PostgreSQL is restarted while the sync runs);
//   3. push times are set in push order; the oracle - computed here from the catalog rows,
//      not by ebb - says what the deleting policy's rules retain;
//   4. the deleting policy (real deletions) and a storm of dry-run policies are triggered at
//      once; DELETEs are slowed, two answer 500 and one connection is dropped; PostgreSQL is
//      restarted once the deletions have started;
//   5. every execution of the cycle must end; then the registry itself is checked: every
//      artifact the rules retain (and everything the catalog did not know) still answers 200
//      and was never sent a DELETE.
// An ebb process that exits is counted and started again (as a supervisor would).
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { migrate } from "../../src/db/migrate.js";
import { pullManifest, pushImage } from "../../test/support/oci_push.js";
import { startFaultProxy, type FaultProxy } from "../../test/support/registry_fault_proxy.js";
import { startRegistry, type TestRegistry } from "../../test/support/registry.js";
import { startConnectionSampler, type ConnectionSampler } from "../support/connection_sampler.js";
import { startEbb, type EbbChild } from "../support/ebb_processes.js";
import { seedPolicies } from "../support/seed_policies.js";
import { startRestartablePostgres, type RestartablePostgres } from "./restartable_postgres.js";

export interface FaultRunOptions {
  minutes: number;
  repositories: number;
  /** new images per repository per cycle */
  imagesPerCycle: number;
  /** dry-run policies triggered with the deleting one every cycle */
  dryRunPolicies: number;
  processes: number;
  poolSize: number;
  workerConcurrency: number;
  /** time an execution may take to end after its cycle's faults before it counts as stuck */
  settleMs: number;
  log(message: string): void;
}

export interface FaultRunResult {
  seconds: number;
  cycles: number;
  postgresRestarts: number;
  registryFaults: Record<string, number>;
  executionsTriggered: number;
  executionsByStatus: Record<string, number>;
  executionsStuck: number;
  tasksByStatus: Record<string, number>;
  manifestsDeleted: number;
  retainedChecked: number;
  wronglyDeleted: string[];
  ebbExits: number;
  peakEbbConnections: number;
  configuredConnections: number;
  /** kind (sync, deleting retention, dry-run retention) -> status -> count */
  executionsByKind: Record<string, Record<string, number>>;
  /** why tasks ended in error -> count */
  taskErrors: Record<string, number>;
}

const KEEP_PER_REPO = 2;
const LATEST_K = 2;

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export async function runFaults(o: FaultRunOptions): Promise<FaultRunResult> {
  const started = Date.now();
  const rand = prng(7);
  const server: RestartablePostgres = await startRestartablePostgres();
  let reg: TestRegistry | undefined;
  let proxy: FaultProxy | undefined;
  const ebbs: EbbChild[] = [];
  const samplers: ConnectionSampler[] = [];
  const harness = new pg.Pool({ connectionString: server.url, max: 2, application_name: "bench:harness" });
  harness.on("error", () => {});
  harness.on("connect", (c) => c.on("error", () => {}));
  try {
    await migrate(harness);
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    const px = proxy;
    const registry = reg;

    /** a query that waits out an outage (the harness is a client like any other) */
    const q = async <T = any>(sql: string, params: unknown[] = []): Promise<T[]> => {
      for (let i = 0; ; i++) {
        try {
          return (await harness.query(sql, params)).rows as T[];
        } catch (err) {
          if (i >= 150) throw err;
          await sleep(200);
        }
      }
    };

    const [{ id: registryId }] = await q("insert into ebb.registries (name, base_url) values ('local', $1) returning id", [px.url]);
    const repos = Array.from({ length: o.repositories }, (_, i) => `proj${i % 3}/app${i}`);
    const keepDigests = new Map<string, string[]>(repos.map((r) => [r, []]));
    let seq = 0;
    const seqOf = new Map<string, number>(); // `${repo}@${digest}` -> push order
    for (const repo of repos) {
      for (let k = 1; k <= KEEP_PER_REPO; k++) keepDigests.get(repo)!.push((await pushImage(registry, repo, { tag: `keep-${k}` })).digest);
    }
    const [{ id: deletingPolicy }] = await q(
      `insert into ebb.policies (name, registry_id, scope) values ('faults-deleting', $1, '{}') returning id`, [registryId]);
    await q(
      `insert into ebb.policy_rules (policy_id, template, params, tag_selectors) values
         ($1, 'latestPushedK', $2, '[{"kind": "glob", "decoration": "matches", "pattern": "tmp-*"}]'),
         ($1, 'always', '{}', '[{"kind": "glob", "decoration": "matches", "pattern": "keep-*"}]')`,
      [deletingPolicy, JSON.stringify({ latestPushedK: LATEST_K })]);
    const dryPolicies = await seedPolicies(harness, { registryId: Number(registryId), count: o.dryRunPolicies, scope: "all", cron: null, dryRun: true });

    const env = (roles: string): NodeJS.ProcessEnv => ({
      DATABASE_URL: server.url, EBB_ROLES: roles, EBB_MIGRATE: "false", EBB_POOL_SIZE: String(o.poolSize),
      EBB_WORKER_CONCURRENCY: String(o.workerConcurrency), EBB_HEARTBEAT_INTERVAL_MS: "1000", EBB_DEAD_WORKER_TIMEOUT_MS: "10000",
      EBB_STOP_CHECK_INTERVAL_MS: "200", EBB_LOG_LEVEL: "warn",
    });
    const roleOf = (i: number) => (i === 0 ? "scheduler,worker" : "worker");
    let ebbExits = 0;
    const exitLines: string[] = [];
    const startProcess = async (i: number) => {
      const e = startEbb(`ebb${i}`, [], { ...env(roleOf(i)), EBB_LOG_LEVEL: "info" });
      await e.waitForLog((l) => l.msg === "ebb ready", 60_000);
      ebbs[i] = e;
    };
    for (let i = 0; i < o.processes; i++) await startProcess(i);
    const superviseExits = async () => {
      for (let i = 0; i < ebbs.length; i++) {
        const e = ebbs[i]!;
        if (e.child.exitCode !== null || e.child.signalCode !== null) {
          ebbExits++;
          exitLines.push(`${e.name} exited ${e.child.exitCode ?? e.child.signalCode}; its last log lines:\n${e.tail()}`);
          o.log(`ebb process ${e.name} exited (${e.child.exitCode ?? e.child.signalCode}); starting it again`);
          await startProcess(i);
        }
      }
    };
    const sample = async () => {
      try {
        samplers.push(await startConnectionSampler(server.url, "postgres", { intervalMs: 50 }));
      } catch { /* the server is down; the next start samples again */ }
    };
    await sample();

    let postgresRestarts = 0;
    const restartPostgres = async (downMs: number) => {
      // the sampler's loop ends on a connection error: stop it first, a new one samples after
      await samplers[samplers.length - 1]?.stop();
      await server.stop();
      postgresRestarts++;
      await sleep(downMs);
      await server.start();
      await sample();
    };

    const triggered: number[] = [];
    const trigger = async (kind: string, target: number, dry: boolean) => {
      const [{ id }] = await q("select ebb.trigger_execution($1, $2, $3) as id", [kind, target, dry]);
      triggered.push(Number(id));
      return Number(id);
    };
    const waitEnded = async (ids: number[], timeoutMs: number): Promise<number[]> => {
      const end = Date.now() + timeoutMs;
      for (;;) {
        await superviseExits();
        const open = (await q<{ id: string }>("select id from ebb.executions where id = any($1::bigint[]) and status in ('pending', 'running')", [ids])).map((r) => Number(r.id));
        if (open.length === 0 || Date.now() > end) return open;
        await sleep(250);
      }
    };

    const wronglyDeleted: string[] = [];
    let retainedChecked = 0;
    let cycles = 0;
    const deadline = started + o.minutes * 60_000;
    while (Date.now() < deadline || cycles === 0) {
      cycles++;
      const cycleStart = px.requests.length;
      // 1. new images
      const pushed: { repo: string; digest: string }[] = [];
      for (const repo of repos) {
        for (let i = 0; i < o.imagesPerCycle; i++) {
          const img = await pushImage(registry, repo, { tag: `tmp-${cycles}-${i}` });
          seqOf.set(`${repo}@${img.digest}`, ++seq);
          pushed.push({ repo, digest: img.digest });
        }
      }
      // 2. sync under registry faults (and every 2nd cycle a PostgreSQL restart)
      const staleRepo = repos[Math.floor(rand() * repos.length)]!;
      if (cycles % 2 === 1) px.inject((m, p) => m === "GET" && p.startsWith(`/v2/${staleRepo}/tags/list`), { kind: "status", status: 500 }, 8);
      px.inject((m, p) => m === "GET" && p.includes("/manifests/"), { kind: "reset" }, 2);
      const syncId = await trigger("sync", Number(registryId), false);
      if (cycles % 2 === 0) {
        await sleep(200 + rand() * 800);
        await restartPostgres(1000 + rand() * 2000);
      }
      await waitEnded([syncId], o.settleMs);
      px.clear();
      // 3. push times in push order (as notifications would record them) and the oracle
      for (const p of pushed) {
        await q(`update ebb.artifacts a set pushed_at = now() - interval '1 day' + $3 * interval '1 second', pushed_at_source = 'event'
                   from ebb.repositories r where r.id = a.repository_id and r.name = $1 and a.digest = $2 and a.pushed_at_source <> 'event'`,
          [p.repo, p.digest, seqOf.get(`${p.repo}@${p.digest}`)]);
      }
      const catalog = await q<{ repo: string; digest: string; pushed_at: Date; tags: string[] }>(
        `select r.name as repo, a.digest, a.pushed_at, coalesce(array_agg(t.name) filter (where t.name is not null), '{}') as tags
           from ebb.artifacts a join ebb.repositories r on r.id = a.repository_id
           left join ebb.tags t on t.repository_id = a.repository_id and t.digest = a.digest
          where r.registry_id = $1 group by 1, 2, 3`, [registryId]);
      const mustSurvive = new Map<string, Set<string>>(repos.map((r) => [r, new Set(keepDigests.get(r))]));
      for (const repo of repos) {
        const mine = catalog.filter((c) => c.repo === repo);
        const known = new Set(mine.map((c) => c.digest));
        // the catalog's newest tmp-* artifacts (time desc, then digest asc)
        mine.filter((c) => c.tags.some((t) => t.startsWith("tmp-")))
          .sort((a, b) => b.pushed_at.getTime() - a.pushed_at.getTime() || (a.digest < b.digest ? -1 : 1))
          .slice(0, LATEST_K).forEach((c) => mustSurvive.get(repo)!.add(c.digest));
        // what the catalog does not know, retention cannot decide about
        for (const p of pushed) if (p.repo === repo && !known.has(p.digest)) mustSurvive.get(repo)!.add(p.digest);
      }
      // 4. the deleting policy and the dry-run storm at once, under faults
      const deletesStart = px.requests.length;
      // first matching rule wins: two 500s and a dropped connection (retried by the client),
      // one doomed artifact whose DELETE keeps failing (recorded 'failed', deleted next cycle),
      // and every other DELETE slowed so the restart lands mid-deletion
      const doomed = catalog.filter((c) => !mustSurvive.get(c.repo)!.has(c.digest));
      const failing = doomed.length ? doomed[Math.floor(rand() * doomed.length)]! : undefined;
      if (failing) px.inject((m, p) => m === "DELETE" && p === `/v2/${failing.repo}/manifests/${failing.digest}`, { kind: "status", status: 500 }, 20);
      px.inject((m) => m === "DELETE", { kind: "status", status: 500 }, 2);
      px.inject((m) => m === "DELETE", { kind: "reset" }, 1);
      px.inject((m) => m === "DELETE", { kind: "delay", ms: 150 });
      const ids = [await trigger("retention", Number(deletingPolicy), false)];
      for (const p of dryPolicies) ids.push(await trigger("retention", p, true));
      const firstDelete = Date.now();
      while (Date.now() - firstDelete < 10_000 && !px.requests.slice(deletesStart).some((r) => r.method === "DELETE")) await sleep(50);
      await sleep(rand() * 500);
      await restartPostgres(1000 + rand() * 2000);
      const open = await waitEnded(ids, o.settleMs);
      px.clear();
      // 5. the registry itself: what the rules retain is there and was never sent a DELETE
      const deleteRequests = new Set(px.requests.slice(cycleStart).filter((r) => r.method === "DELETE").map((r) => r.path));
      for (const [repo, digests] of mustSurvive) {
        for (const d of digests) {
          retainedChecked++;
          const got = await pullManifest(registry, repo, d);
          if (got.status !== 200 || deleteRequests.has(`/v2/${repo}/manifests/${d}`)) {
            wronglyDeleted.push(`${repo}@${d} (cycle ${cycles}: GET ${got.status}, DELETE sent ${deleteRequests.has(`/v2/${repo}/manifests/${d}`)})`);
          }
        }
      }
      const statuses = await q<{ status: string; n: number }>("select status, count(*)::int as n from ebb.executions where id = any($1::bigint[]) group by 1", [ids]);
      o.log(`cycle ${cycles}: ${statuses.map((s) => `${s.status} ${s.n}`).join(", ")}${open.length ? `, ${open.length} NOT ENDED` : ""}; ${postgresRestarts} PostgreSQL restarts so far; wrongly deleted ${wronglyDeleted.length}`);
    }

    // the end: every execution triggered must have ended
    const stuck = await waitEnded(triggered, o.settleMs);
    await superviseExits();
    const byStatus = Object.fromEntries((await q<{ status: string; n: number }>("select status, count(*)::int as n from ebb.executions group by 1 order by 1")).map((r) => [r.status, r.n]));
    const tasksByStatus = Object.fromEntries((await q<{ status: string; n: number }>("select status, count(*)::int as n from ebb.tasks group by 1 order by 1")).map((r) => [r.status, r.n]));
    const [{ n: deleted }] = (await q<{ n: number }>("select count(*)::int as n from ebb.decisions where outcome in ('deleted', 'already_deleted')")) as [{ n: number }];
    const executionsByKind: Record<string, Record<string, number>> = {};
    for (const row of await q<{ k: string; status: string; n: number }>(
      `select case when kind = 'sync' then 'sync' when dry_run then 'dry-run retention' else 'deleting retention' end as k, status, count(*)::int as n
         from ebb.executions group by 1, 2 order by 1, 2`)) (executionsByKind[row.k] ??= {})[row.status] = row.n;
    const taskErrors = Object.fromEntries((await q<{ why: string; n: number }>(
      `select case when error like '%is STALE%' then 'refused: repository STALE'
                   when error like '%deletion(s) failed%' then 'a DELETE kept failing'
                   when error like '%aborted: %' then 'aborted by a cap'
                   else left(error, 80) end as why, count(*)::int as n
         from ebb.tasks where status = 'error' group by 1 order by 2 desc`)).map((r) => [r.why, r.n]));
    const registryFaults: Record<string, number> = {};
    for (const r of px.requests) if (r.faulted && r.faulted !== "delay") registryFaults[r.faulted] = (registryFaults[r.faulted] ?? 0) + 1;
    let peak = 0;
    for (const s of samplers) peak = Math.max(peak, s.peaks().ebbTotal);
    if (exitLines.length) o.log(`ebb exits:\n${exitLines.join("\n")}`);
    return {
      seconds: (Date.now() - started) / 1000,
      cycles,
      postgresRestarts,
      registryFaults,
      executionsTriggered: triggered.length,
      executionsByStatus: byStatus,
      executionsStuck: stuck.length,
      tasksByStatus,
      manifestsDeleted: deleted,
      retainedChecked,
      wronglyDeleted,
      ebbExits,
      peakEbbConnections: peak,
      configuredConnections: o.processes * o.poolSize,
      executionsByKind,
      taskErrors,
    };
  } finally {
    for (const s of samplers) await s.stop().catch(() => {});
    for (const e of ebbs) await e?.stop().catch(() => {});
    await harness.end().catch(() => {});
    await proxy?.stop();
    await reg?.stop();
    await server.destroy();
  }
}
