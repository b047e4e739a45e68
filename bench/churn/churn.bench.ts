// "churn": a soak of ebb under a simulated CI fleet. One ebb process (scheduler, worker, http)
// on a fresh database, a real docker-registry with notifications to ebb, pushes every 1-3 s
// (single-arch builds, multi-arch indexes, cosign-style .sig tags, OCI referrers), re-tags of
// old builds as release-N / keep-N, two pullers, a sync every 20 s and a deleting retention
// policy every 15 s. Reports the traffic, how syncs and executions ended, what was deleted,
// and the violations of the invariants by kind (every one must be 0; the run fails otherwise,
// with the evidence of each violation on stderr).
import type { Benchmark, ResultTable } from "../support/benchmark.js";
import { fmtCount, fmtSeconds } from "../support/report.js";
import { VIOLATION_KINDS } from "./churn_invariants.js";
import { runChurn } from "./churn_run.js";

function list(r: Record<string, number>): string {
  const entries = Object.entries(r).sort((a, b) => b[1] - a[1]);
  return entries.length ? entries.map(([k, v]) => `${k} ${fmtCount(v)}`).join(", ") : "none";
}

const VIOLATION_NOTE: Record<string, string> = {
  "kept-deleted": "a digest deleted with a keep-*/release-* tag whose push event ebb had acknowledged before the deciding task started",
  "kept-deleted-unseen": "a digest deleted with a keep-*/release-* tag the registry had answered >2 s before the deciding task started, not yet in ebb's catalog (notifications lagging)",
  "newest-k-deleted": "deleted while fewer than K ranked artifacts were newer by the push-time semantics",
  "index-child-of-surviving-index-gone": "a platform manifest gone while its index was not deleted",
  "referrer-of-surviving-subject-gone": "an OCI referrer gone while its subject is present and never deleted",
  "out-of-scope-touched": "a DELETE to, or anything missing in, a repository outside the scope",
  "gone-without-ebb-delete": "a manifest or tag missing at the end that ebb never sent a DELETE for",
  "delete-without-decision": "a DELETE ebb sent without an earlier 'delete' decision row",
  "execution-stuck": "an execution still open after the settle bound past the last fire",
  "ebb-exit": "the ebb process exited during the soak",
  "repository-not-cleaned": "an in-scope repository with no deletion and no successful retention task",
};

export const churnBenchmark: Benchmark = {
  name: "churn",
  description: "a CI fleet pushing, re-tagging and pulling while syncs and a deleting policy fire every few seconds; invariants from the registry's view",
  async run(ctx) {
    const full = ctx.scale === "full";
    // BENCH_CHURN_SECONDS=n overrides the duration of the churn itself (development)
    const seconds = Number(process.env.BENCH_CHURN_SECONDS) || (full ? 330 : 100);
    const o = {
      seconds,
      inScope: ["team/api", "team/web", "team/worker", "team/docs", "team/tools", "team/base"],
      busy: 3,
      outOfScope: "other/untouchable",
      seedImages: 8,
      pullers: 2,
      latestK: 5,
      retentionCron: "*/15 * * * * *",
      syncCron: "*/20 * * * * *",
      settleMs: full ? 120_000 : 60_000,
      seed: Number(process.env.BENCH_CHURN_SEED) || 1,
      log: ctx.log,
    };
    const db = await ctx.freshDatabase("churn");
    const r = await runChurn(db, o);
    const cleaned = r.repositories.filter((x) => x.cleaned).length;
    const rows: (string | number)[][] = [
      ["duration of the churn", `${fmtSeconds(r.seconds)} s`, `then schedules disabled, executions given ${o.settleMs / 1000} s to end`],
      ["pushes (manifests)", `${fmtCount(r.pushes)} (${fmtCount(r.manifests)})`, `${o.seedImages} seed builds per repository first; ${r.fleetErrors.length} fleet errors`],
      ["re-tags (release-N / keep-N)", fmtCount(r.retags), `${r.resurrected} deleted digest(s) created again by a re-tag racing the DELETE`],
      ["pulls (404)", `${fmtCount(r.pulls)} (${fmtCount(r.pulls404)})`, `${o.pullers} pullers, random tags`],
      ["syncs", list(r.syncsByStatus), `cron ${o.syncCron}`],
      ["- repositories left STALE by a sync", fmtCount(Object.values(r.staleMarks).reduce((a, b) => a + b, 0)), list(r.staleMarks)],
      ["retention executions", list(r.retentionByStatus), `cron ${o.retentionCron}, latestPushedK ${o.latestK} over ** + always keep-* + always release-*`],
      ["- retention task errors", fmtCount(Object.values(r.retentionTaskErrors).reduce((a, b) => a + b, 0)), list(r.retentionTaskErrors)],
      ["deletions (DELETE 202 / 404 / other)", `${fmtCount(r.deletes202)} / ${fmtCount(r.deletes404)} / ${fmtCount(r.deleteOther)}`, `decisions: ${list(r.decisionOutcomes)}`],
      ["notification envelopes acknowledged by ebb (other answers)", `${fmtCount(r.envelopes)} (${fmtCount(r.refusedEnvelopes)})`, "through a recording proxy: dates when ebb had each push written"],
      ["push notification delay: median / p95 / max", `${fmtSeconds(r.notificationDelayMs.median / 1000)} / ${fmtSeconds(r.notificationDelayMs.p95 / 1000)} / ${fmtSeconds(r.notificationDelayMs.max / 1000)} s`,
        `the registry's 201 for a tag -> ebb's 200 for the envelope carrying its push; ${r.tagsNotAcknowledged} tag(s) never acknowledged`],
      ["re-tag races (not violations)", fmtCount(r.raceCount), "a keep-*/release-* tag the registry answered < 2 s before the deciding task started, or later, deleted with its digest"],
      ...VIOLATION_KINDS.map((k) => [`violations: ${k}`, r.violationsByKind[k], VIOLATION_NOTE[k]!]),
      ["repositories cleaned", `${cleaned}/${r.repositories.length}`,
        r.repositories.map((x) => `${x.repository}: ${x.deletions} del, tasks ${list(x.tasksByStatus)}`).join("; ")],
    ];
    const total = r.violations.length;
    const table: ResultTable = {
      title: `churn: ${fmtSeconds(r.seconds)} s, ${o.inScope.length} repositories in scope (${o.busy} busy) + 1 out of scope, push-time semantics ${r.semantics}`,
      head: ["measure", "value", "note"],
      rows,
      notes: [
        "one ebb process (scheduler, worker, http, pool 8) on a fresh database; a real docker-registry (delete enabled) with notifications to ebb's /events; ebb reaches the registry through a recording proxy, so every DELETE is ebb's and logged.",
        "invariants are checked from the fleet's own record of every PUT, ebb's DELETE requests and the registry's /v2/ view at the end (HEAD of every digest, tag lists); ebb's decision rows only date decisions and give evidence.",
        `verdict: ${total === 0 ? "every invariant held" : `FAILED: ${total} violation(s), evidence on stderr`}.`,
      ],
    };
    if (r.violations.length) {
      ctx.log(`VIOLATIONS (${r.violations.length}):\n${r.violations.map((v) => `[${v.kind}] ${v.evidence}`).join("\n")}`);
    }
    if (r.races.length) ctx.log(`re-tag races:\n${r.races.join("\n")}`);
    if (r.fleetErrors.length) ctx.log(`fleet errors:\n${r.fleetErrors.slice(0, 20).join("\n")}`);
    if (total > 0) {
      // the table is still printed: the runner prints what run() returns, then counts the failure
      const err = new Error(`churn: ${total} invariant violation(s)`) as Error & { tables?: ResultTable[] };
      err.tables = [table];
      throw err;
    }
    return [table];
  },
};
