// The churn soak: one real ebb process (scheduler, worker, http) on its own fresh database, a
// real docker-registry whose notifications go to ebb's /events, and for N minutes a simulated
// CI fleet (churn_fleet.ts) pushing, re-tagging and pulling while a scheduled sync and a
// deleting retention policy fire every few seconds. ebb reaches the registry through a
// recording proxy (churn_proxy.ts), so every DELETE it sends is logged with its time and
// answer. At the end the schedules are disabled, every execution must end within a bound, and
// the invariants (churn_invariants.ts) are checked against the registry's own /v2/ view.
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { registryTags } from "../../test/support/oci_push.js";
import { freePort } from "../../test/support/ports.js";
import { startRegistry, type TestRegistry } from "../../test/support/registry.js";
import type { BenchDatabase } from "../support/bench_database.js";
import { startEbb, type EbbChild } from "../support/ebb_processes.js";
import { Fleet } from "./churn_fleet.js";
import {
  checkInvariants, pushTimeSemantics, VIOLATION_KINDS,
  type DecisionRow, type FinalView, type PushTimeSemantics, type Violation, type ViolationKind,
} from "./churn_invariants.js";
import { startRecordingProxy, type RecordingProxy } from "./churn_proxy.js";

export interface ChurnOptions {
  seconds: number;
  inScope: string[];
  busy: number;
  outOfScope: string;
  seedImages: number;
  pullers: number;
  latestK: number;
  /** 6-field cron of the deleting policy and of the registry's sync schedule */
  retentionCron: string;
  syncCron: string;
  /** how long executions may take to end once the schedules are disabled */
  settleMs: number;
  seed: number;
  log(message: string): void;
}

export interface RepositoryCleaning {
  repository: string;
  deletions: number;
  tasksByStatus: Record<string, number>;
  cleaned: boolean;
}

export interface ChurnResult {
  seconds: number;
  semantics: PushTimeSemantics;
  pushes: number;
  manifests: number;
  retags: number;
  pulls: number;
  pulls404: number;
  fleetErrors: string[];
  syncsByStatus: Record<string, number>;
  /** repositories a sync left STALE, summed over syncs, by reason */
  staleMarks: Record<string, number>;
  retentionByStatus: Record<string, number>;
  retentionTaskErrors: Record<string, number>;
  deletes202: number;
  deletes404: number;
  deleteOther: number;
  decisionOutcomes: Record<string, number>;
  /** notification envelopes ebb acknowledged (200) / answered otherwise */
  envelopes: number;
  refusedEnvelopes: number;
  /** registry's 201 for a tag -> ebb's 200 for the envelope carrying its push */
  notificationDelayMs: { median: number; p95: number; max: number };
  tagsNotAcknowledged: number;
  raceCount: number;
  races: string[];
  resurrected: number;
  violations: Violation[];
  violationsByKind: Record<ViolationKind, number>;
  repositories: RepositoryCleaning[];
  ebbExits: number;
}

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Digests and counters vary from run to run; the shape of an error message does not. */
function errorShape(message: string): string {
  return message
    .replace(/sha256:[0-9a-f]{64}/g, "sha256:…")
    .replace(/\b(team|other)\/[a-z0-9-]+/g, "<repo>")
    .replace(/\d+/g, "N")
    .slice(0, 160);
}

function tally(rows: { k: string; n: number }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rows) out[r.k] = (out[r.k] ?? 0) + r.n;
  return out;
}

export async function runChurn(db: BenchDatabase, o: ChurnOptions): Promise<ChurnResult> {
  const semantics = pushTimeSemantics();
  const rand = prng(o.seed);
  const q = async <T extends pg.QueryResultRow = any>(sql: string, params: unknown[] = []): Promise<T[]> => (await db.pool.query<T>(sql, params)).rows;
  const token = randomBytes(16).toString("hex");
  const ebbPort = await freePort();
  let reg: TestRegistry | undefined;
  let proxy: RecordingProxy | undefined;
  let eventsProxy: RecordingProxy | undefined;
  let ebb: EbbChild | undefined;
  let fleet: Fleet | undefined;
  let ebbExits = 0;
  const exitEvidence: string[] = [];
  let stopping = false;
  try {
    // the registry's notifications reach ebb through a proxy that keeps the envelopes
    eventsProxy = await startRecordingProxy(`http://127.0.0.1:${ebbPort}`, (m, p) => m === "POST" && p.startsWith("/events"));
    reg = await startRegistry(undefined, {
      notifications: { url: `${eventsProxy.url}/events?registry=churn`, authorization: `Bearer ${token}` },
    });
    proxy = await startRecordingProxy(reg.url);
    const registryId = (await q<{ id: string }>("insert into ebb.registries (name, base_url) values ('churn', $1) returning id", [proxy.url]))[0]!.id;

    const env: NodeJS.ProcessEnv = {
      DATABASE_URL: db.url, EBB_ROLES: "scheduler,worker,http", EBB_MIGRATE: "false", EBB_HTTP_PORT: String(ebbPort),
      EBB_EVENTS_TOKEN: token, EBB_POOL_SIZE: "8", EBB_LOG_LEVEL: "warn",
    };
    const startProcess = async () => {
      const e = startEbb("ebb", [], { ...env, EBB_LOG_LEVEL: "info" });
      e.child.once("exit", (code, signal) => {
        if (stopping) return;
        ebbExits++;
        exitEvidence.push(`ebb exited (${code ?? signal}); its last log lines:\n${e.tail()}`);
        o.log(`ebb exited (${code ?? signal}); starting it again`);
        void startProcess().catch((err: Error) => o.log(`restart failed: ${err.message}`));
      });
      await e.waitForLog((l) => l.msg === "ebb ready", 60_000);
      ebb = e;
    };
    await startProcess();

    fleet = new Fleet({
      registry: reg, repositories: o.inScope, busy: o.busy, outOfScope: o.outOfScope,
      seedImages: o.seedImages, pullers: o.pullers, rand, log: o.log,
    });
    await fleet.seed();
    o.log(`seeded ${fleet.counts.manifests} manifests in ${o.inScope.length + 1} repositories`);

    // the deleting policy (scope: project "team") and the registry's sync schedule
    const policyId = (await q<{ id: string }>(
      `insert into ebb.policies (name, registry_id, scope, cron, timezone)
       values ('churn-delete', $1, '{"projects": [{"kind": "glob", "pattern": "team"}]}', $2, 'UTC') returning id`,
      [registryId, o.retentionCron]))[0]!.id;
    await q(
      `insert into ebb.policy_rules (policy_id, template, params, tag_selectors) values
         ($1, 'latestPushedK', $2, '[{"kind": "glob", "decoration": "matches", "pattern": "**"}]'),
         ($1, 'always', '{}', '[{"kind": "glob", "decoration": "matches", "pattern": "keep-*"}]'),
         ($1, 'always', '{}', '[{"kind": "glob", "decoration": "matches", "pattern": "release-*"}]')`,
      [policyId, JSON.stringify({ latestPushedK: o.latestK })]);
    await q("insert into ebb.schedules (kind, target_id, cron) values ('sync', $1, $2)", [registryId, o.syncCron]);

    const started = Date.now();
    fleet.start();
    const deadline = started + o.seconds * 1000;
    while (Date.now() < deadline) {
      await sleep(Math.min(15_000, Math.max(0, deadline - Date.now())));
      const ex = await q<{ k: string; n: number }>(
        `select kind || ' ' || status as k, count(*)::int as n from ebb.executions group by 1 order by 1`);
      const dels = proxy.requests.filter((r) => r.method === "DELETE" && r.status === 202).length;
      o.log(`${((Date.now() - started) / 1000).toFixed(0)} s: ${fleet.counts.pushes} pushes, ${fleet.counts.retags} re-tags, ${fleet.counts.pulls} pulls, ` +
        `${dels} DELETEs 202; executions: ${ex.map((r) => `${r.k} ${r.n}`).join(", ") || "none"}`);
    }
    await fleet.stop();
    const churnSeconds = (Date.now() - started) / 1000;

    // no new fires; every execution must end within the bound
    await q("update ebb.policies set enabled = false where id = $1", [policyId]);
    await q("update ebb.schedules set enabled = false");
    const last = (await q<{ last: Date | null }>("select max(created_at) as last from ebb.executions"))[0]!.last;
    const bound = (last?.getTime() ?? Date.now()) + o.settleMs;
    let open: { id: string; kind: string; status: string; created_at: Date; open_tasks: number }[] = [];
    for (;;) {
      open = await q(
        `select e.id, e.kind, e.status, e.created_at,
                (select count(*)::int from ebb.tasks t where t.execution_id = e.id and t.status in ('pending', 'running')) as open_tasks
           from ebb.executions e where e.status in ('pending', 'running') order by e.id`);
      if (open.length === 0 || Date.now() > bound) break;
      await sleep(500);
    }
    o.log(`schedules disabled; ${open.length} execution(s) still open ${((Date.now() - (last?.getTime() ?? Date.now())) / 1000).toFixed(0)} s after the last fire`);

    // the registry's own view
    const head = new Map<string, number>();
    for (const a of fleet.artifacts.values()) {
      const res = await fetch(`${reg.url}/v2/${a.repo}/manifests/${a.digest}`, { method: "HEAD", headers: { accept: a.mediaType } });
      await res.arrayBuffer();
      head.set(`${a.repo}@${a.digest}`, res.status);
    }
    const tags = new Map<string, Set<string>>();
    for (const repo of [...o.inScope, o.outOfScope]) tags.set(repo, new Set(await registryTags(reg, repo)));
    const final: FinalView = { head, tags };

    const decisions = (await q<{ execution_id: string; repository: string; digest: string; action: string; outcome: string; reason: string; tags: string[]; role: string; decided_at: Date; task_started_at: Date | null; acted_at: Date | null; pushed_at: Date | null }>(
      `select d.execution_id, d.repository, d.digest, d.action, d.outcome, d.reason, d.tags, d.role, d.decided_at, t.started_at as task_started_at, d.acted_at, d.pushed_at
         from ebb.decisions d left join ebb.tasks t on t.id = d.task_id`))
      .map((r): DecisionRow => ({
        execution_id: Number(r.execution_id), repository: r.repository, digest: r.digest, action: r.action, outcome: r.outcome,
        reason: r.reason, tags: r.tags, role: r.role, decided_at: r.decided_at.getTime(), task_started_at: r.task_started_at?.getTime() ?? null,
        acted_at: r.acted_at?.getTime() ?? null, pushed_at: r.pushed_at?.getTime() ?? null,
      }));
    const tagIngestedAt = new Map<string, number>();
    let envelopes = 0;
    for (const r of eventsProxy.requests) {
      if (r.status !== 200 || !r.body) continue;
      envelopes++;
      try {
        const env = JSON.parse(r.body.toString("utf8")) as { events?: { action?: string; target?: { repository?: string; tag?: string } }[] };
        for (const e of env.events ?? []) {
          if (e.action !== "push" || !e.target?.tag || !e.target.repository) continue;
          const k = `${e.target.repository}@${e.target.tag}`;
          if (!tagIngestedAt.has(k) || tagIngestedAt.get(k)! > r.endedAt) tagIngestedAt.set(k, r.endedAt);
        }
      } catch { /* not an envelope */ }
    }
    // how far ebb's catalog lagged behind the registry: registry's 201 for a tag -> ebb's 200 for its event
    const delays: number[] = [];
    let notAcknowledged = 0;
    for (const a of fleet.artifacts.values()) {
      for (const t of a.tags) {
        const at = tagIngestedAt.get(`${a.repo}@${t.tag}`);
        if (at === undefined) notAcknowledged++;
        else delays.push(Math.max(0, at - t.ackAt));
      }
    }
    delays.sort((a, b) => a - b);
    const refusedEnvelopes = eventsProxy.requests.filter((r) => r.method === "POST" && r.status !== 200).length;
    const inv = checkInvariants({
      artifacts: fleet.artifacts, inScope: o.inScope, outOfScope: o.outOfScope, latestK: o.latestK,
      proxyRequests: proxy.requests, decisions, final, semantics, tagIngestedAt, unseenSlackMs: 2000,
    });
    const violations = [...inv.violations];
    for (const e of open) {
      violations.push({ kind: "execution-stuck", evidence: `${e.kind} execution ${e.id} created ${e.created_at.toISOString()} is still ${e.status} (${e.open_tasks} open task(s)) ${(o.settleMs / 1000).toFixed(0)} s after the last fire` });
    }
    for (const e of exitEvidence) violations.push({ kind: "ebb-exit", evidence: e });

    const taskRows = await q<{ key: string; status: string; n: number }>(
      `select t.key, t.status, count(*)::int as n from ebb.tasks t join ebb.executions e on e.id = t.execution_id
        where e.kind = 'retention' group by 1, 2`);
    const repositories: RepositoryCleaning[] = o.inScope.map((repository) => {
      const tasksByStatus: Record<string, number> = {};
      for (const r of taskRows) if (r.key === repository) tasksByStatus[r.status] = r.n;
      const deletions = inv.deletes202.filter((d) => d.repo === repository).length;
      const cleaned = deletions > 0 || (tasksByStatus["success"] ?? 0) > 0;
      if (!cleaned) {
        violations.push({ kind: "repository-not-cleaned", evidence: `${repository}: no DELETE and no successful retention task; its tasks: ${JSON.stringify(tasksByStatus)}` });
      }
      return { repository, deletions, tasksByStatus, cleaned };
    });

    const byStatus = async (kind: string) => tally(await q<{ k: string; n: number }>(
      "select status as k, count(*)::int as n from ebb.executions where kind = $1 group by 1", [kind]));
    const staleRows = await q<{ reason: string }>(
      `select s ->> 'reason' as reason from ebb.tasks t join ebb.executions e on e.id = t.execution_id,
              jsonb_array_elements(coalesce(t.details -> 'stale', '[]')) s where e.kind = 'sync'`);
    const staleMarks = tally(staleRows.map((r) => ({ k: errorShape(r.reason ?? "no reason"), n: 1 })));
    const taskErrors = await q<{ error: string }>(
      `select t.error from ebb.tasks t join ebb.executions e on e.id = t.execution_id where e.kind = 'retention' and t.status = 'error'`);
    const retentionTaskErrors = tally(taskErrors.map((r) => ({ k: errorShape(r.error ?? "no error recorded"), n: 1 })));
    const outcomes = tally(await q<{ k: string; n: number }>(
      "select action || '/' || outcome as k, count(*)::int as n from ebb.decisions where action in ('delete', 'error') group by 1"));
    const dels = proxy.requests.filter((r) => r.method === "DELETE");
    const violationsByKind = Object.fromEntries(VIOLATION_KINDS.map((k) => [k, violations.filter((v) => v.kind === k).length])) as Record<ViolationKind, number>;
    return {
      seconds: churnSeconds,
      semantics,
      pushes: fleet.counts.pushes,
      manifests: fleet.counts.manifests,
      retags: fleet.counts.retags,
      pulls: fleet.counts.pulls,
      pulls404: fleet.counts.pulls404,
      fleetErrors: fleet.counts.errors,
      syncsByStatus: await byStatus("sync"),
      staleMarks,
      retentionByStatus: await byStatus("retention"),
      retentionTaskErrors,
      deletes202: dels.filter((d) => d.status === 202).length,
      deletes404: dels.filter((d) => d.status === 404).length,
      deleteOther: dels.filter((d) => d.status !== 202 && d.status !== 404).length,
      decisionOutcomes: outcomes,
      envelopes,
      refusedEnvelopes,
      notificationDelayMs: { median: delays[Math.floor(delays.length / 2)] ?? 0, p95: delays[Math.floor(delays.length * 0.95)] ?? 0, max: delays[delays.length - 1] ?? 0 },
      tagsNotAcknowledged: notAcknowledged,
      raceCount: inv.races.length,
      races: inv.races,
      resurrected: inv.resurrected,
      violations,
      violationsByKind,
      repositories,
      ebbExits,
    };
  } finally {
    stopping = true;
    await fleet?.stop().catch(() => {});
    await ebb?.stop().catch(() => {});
    await proxy?.stop().catch(() => {});
    await eventsProxy?.stop().catch(() => {});
    await reg?.stop().catch(() => {});
  }
}
