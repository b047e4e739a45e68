// The DB-backed retention execution end to end, dry run: one policy over every repository of
// the seeded registry (the bench policy), started like `ebb run` (an execution row and its
// plan job in one transaction), worked by one real ebb worker process. Everything the worker
// does is included: planning the repository tasks in batches, per repository one snapshot
// read of the candidates, the pure evaluation, one batched insert of every decision row,
// task counts, the execution's status. Nothing is deleted (dry run).
import { fileURLToPath } from "node:url";
import { SERVER_URL } from "../support/bench_database.js";
import type { SeededDatabase } from "../support/benchmark.js";
import { startConnectionSampler, type ConnectionPeaks } from "../support/connection_sampler.js";
import { startEbb } from "../support/ebb_processes.js";
import { seedPolicies } from "../support/seed_policies.js";

const EBB_PROCESS = fileURLToPath(new URL("../midnight_storm/storm_process.ts", import.meta.url));

export interface ExecutionResult {
  /** false: stopped at the timeout; counts and time are the progress by then */
  finished: boolean;
  status: string;
  error: string | null;
  tasks: number;
  taskStatus: Record<string, number>;
  artifacts: number;
  decisions: number;
  deleteDecisions: number;
  seconds: number;
  peakRss: number;
  connections: ConnectionPeaks;
}

export async function runRetentionExecution(
  db: SeededDatabase,
  opts: { poolSize: number; workerConcurrency: number; timeoutMs: number; log(m: string): void },
): Promise<ExecutionResult> {
  const [policyId] = await seedPolicies(db.pool, { registryId: Number(db.seed.registryId), count: 1, scope: "all", cron: null, dryRun: true });
  const sampler = await startConnectionSampler(SERVER_URL, db.name);
  const child = startEbb("ebb-worker", [], {
    DATABASE_URL: db.url,
    EBB_ROLES: "worker",
    EBB_POOL_SIZE: String(opts.poolSize),
    EBB_WORKER_CONCURRENCY: String(opts.workerConcurrency),
    EBB_TASK_GROUP_CONCURRENCY: String(opts.workerConcurrency),
    EBB_MIGRATE: "false",
  }, EBB_PROCESS);
  try {
    await child.waitForLog((l) => l.msg === "ebb ready", 120_000);
    const client = await db.pool.connect();
    let executionId: number;
    try {
      await client.query("begin");
      // as `ebb run --dry-run` does: the execution row and its plan job in one transaction
      const { rows } = await client.query<{ id: string }>("select ebb.trigger_execution('retention', $1, true) as id", [policyId]);
      executionId = Number(rows[0]!.id);
      await client.query("commit");
    } catch (err) {
      await client.query("rollback").catch(() => {});
      throw err;
    } finally {
      client.release();
    }
    opts.log(`execution ${executionId} of policy ${policyId} started (dry run, every repository)`);
    const deadline = Date.now() + opts.timeoutMs;
    let finished = true;
    for (;;) {
      const { rows } = await db.pool.query<{ status: string }>("select status from ebb.executions where id = $1", [executionId]);
      if (!["pending", "running"].includes(rows[0]!.status)) break;
      if (Date.now() > deadline) {
        // report the progress by then (the bench must stay bounded)
        finished = false;
        opts.log(`execution ${executionId} still ${rows[0]!.status} after ${opts.timeoutMs / 1000} s; measuring progress`);
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const connections = await sampler.stop();
    const peakRss = child.peakRss();
    const { rows: ex } = await db.pool.query<{ status: string; error: string | null; seconds: number }>(
      "select status, error, extract(epoch from coalesce(ended_at, now()) - created_at)::float8 as seconds from ebb.executions where id = $1",
      [executionId],
    );
    const { rows: tk } = await db.pool.query<{ status: string; n: number; total: number }>(
      "select status, count(*)::int as n, coalesce(sum(total), 0)::int as total from ebb.tasks where execution_id = $1 group by status",
      [executionId],
    );
    const { rows: dc } = await db.pool.query<{ n: number; deletes: number }>(
      "select count(*)::int as n, count(*) filter (where action = 'delete')::int as deletes from ebb.decisions where execution_id = $1",
      [executionId],
    );
    return {
      finished,
      status: ex[0]!.status,
      error: ex[0]!.error,
      tasks: tk.reduce((a, r) => a + r.n, 0),
      taskStatus: Object.fromEntries(tk.map((r) => [r.status, r.n])),
      artifacts: tk.reduce((a, r) => a + r.total, 0),
      decisions: dc[0]!.n,
      deleteDecisions: dc[0]!.deletes,
      seconds: ex[0]!.seconds,
      peakRss,
      connections,
    };
  } finally {
    await child.stop();
    await sampler.stop();
  }
}
