// "faults" (issue 7): the long version of the reliability tests. For N minutes, cycles of
// push -> sync -> real deletion + a storm of dry runs, with PostgreSQL restarted twice a cycle
// at most (private embedded server) and registry faults (500s, dropped connections, a DELETE
// that keeps failing, a repository whose tag list fails -> STALE). Reports what was injected,
// how the executions ended, how many stayed stuck, how many artifacts the rules retain were
// deleted (must be 0) and the peak connections against the configured pools.
import type { Benchmark, ResultTable } from "../support/benchmark.js";
import { fmtCount, fmtSeconds } from "../support/report.js";
import { runFaults } from "./fault_run.js";

const POOL_SIZE = 8;
const PROCESSES = 2;

function list(r: Record<string, number>): string {
  const entries = Object.entries(r);
  return entries.length ? entries.map(([k, v]) => `${k} ${fmtCount(v)}`).join(", ") : "none";
}

export const faultsBenchmark: Benchmark = {
  name: "faults",
  description: "PostgreSQL restarts and registry faults during real deletions and a dry-run storm, for N minutes",
  async run(ctx) {
    const full = ctx.scale === "full";
    // BENCH_FAULTS_MINUTES=n overrides the duration (development)
    const minutes = Number(process.env.BENCH_FAULTS_MINUTES) || (full ? 10 : 1);
    const o = {
      minutes,
      repositories: full ? 12 : 3,
      imagesPerCycle: full ? 4 : 3,
      dryRunPolicies: full ? 20 : 4,
      processes: PROCESSES,
      poolSize: POOL_SIZE,
      workerConcurrency: 4,
      settleMs: 120_000,
      log: ctx.log,
    };
    const r = await runFaults(o);
    const ended = Object.entries(r.executionsByStatus).filter(([s]) => s !== "pending" && s !== "running").reduce((a, [, n]) => a + n, 0);
    const rows: (string | number)[][] = [
      ["duration / cycles", `${fmtSeconds(r.seconds)} s / ${r.cycles}`, ""],
      ["PostgreSQL restarts (fast shutdown, 1-3 s down)", r.postgresRestarts, "during syncs (every 2nd cycle) and mid-deletion (every cycle)"],
      ["registry faults injected", list(r.registryFaults), "not counting the 150 ms delay on every DELETE"],
      ["executions triggered", fmtCount(r.executionsTriggered), `1 sync + 1 deleting + ${o.dryRunPolicies} dry-run retention per cycle`],
      ["executions finished", fmtCount(ended), list(r.executionsByStatus)],
      ...Object.entries(r.executionsByKind).map(([k, v]) => [`- ${k}`, list(v), ""]),
      ["executions stuck (pending/running at the end)", r.executionsStuck, "target 0"],
      ["tasks", list(r.tasksByStatus), `errors: ${list(r.taskErrors)}`],
      ["manifests deleted (real deletions)", fmtCount(r.manifestsDeleted), "deleted or already_deleted decision rows"],
      ["retained artifacts checked in the registry", fmtCount(r.retainedChecked), "GET 200 and never sent a DELETE"],
      ["artifacts wrongly deleted", r.wronglyDeleted.length, `must be 0${r.wronglyDeleted.length ? `: ${r.wronglyDeleted.slice(0, 3).join("; ")}` : ""}`],
      ["ebb process exits (restarted by the harness)", r.ebbExits, "target 0: the same processes recover"],
      ["peak ebb connections / configured pools", `${r.peakEbbConnections} / ${r.configuredConnections}`, `${PROCESSES} processes x pool ${POOL_SIZE}`],
    ];
    const table: ResultTable = {
      title: `faults: ${minutes} min, ${o.repositories} repositories, ${o.imagesPerCycle} new images per repository per cycle, ${o.dryRunPolicies} dry-run policies`,
      head: ["measure", "value", "note"],
      rows,
      notes: [
        `${PROCESSES} real ebb processes (scheduler+worker, worker), pool ${POOL_SIZE}, worker concurrency 4, on a private embedded PostgreSQL that is restarted; a real docker-registry behind the fault proxy.`,
        "errors are expected and correct: a DELETE that keeps answering 500 ends its execution 'error' (the artifact is deleted by the next cycle), a repository whose tag list fails (every 2nd cycle) is STALE - the sync still ends 'success' for the others and counts it in its task's errors with the reason - and its retention tasks are refused until a sync succeeds, which ends every retention execution of that cycle 'error' (its other repositories are decided and deleted as usual).",
        "wrongly deleted = an artifact the deleting policy's rules retain (computed by the harness from the catalog: keep-* tags, the 2 newest tmp-* by push time) or one the catalog did not know, found 404 in the registry or sent a DELETE.",
        `verdict: ${r.executionsStuck === 0 && r.wronglyDeleted.length === 0 && r.peakEbbConnections <= r.configuredConnections ? "nothing stuck, nothing retained deleted, connections within the pools" : "FAILED (see the rows above)"}; ` +
          `${r.ebbExits === 0 ? "no ebb process exited" : `${r.ebbExits} ebb process exit(s) during a restart - MISSED the target of recovering in place (the harness restarted them; nothing was lost)`}.`,
      ],
    };
    if (r.wronglyDeleted.length) ctx.log(`WRONGLY DELETED:\n${r.wronglyDeleted.join("\n")}`);
    return [table];
  },
};
