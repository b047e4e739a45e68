// The end of `--wait`: follow the execution, then print its summary (table, or the JSON of
// `ebb executions show --json`) and turn the outcome into an exit code: 0 only when the
// execution succeeded; 1 when it ended in error or was stopped, or when no worker is alive
// to run it; 130 when the wait was interrupted (Ctrl-C; the execution goes on).
import { readExecutionDetail } from "../../executions/execution_queries.js";
import type { AppContext } from "../../service/context.js";
import { EXIT } from "../exit_codes.js";
import { followExecution } from "./execution_progress.js";
import { renderExecutionDetail } from "./execution_view.js";
import { renderJson, writeOut } from "./json_output.js";

export interface WaitOptions {
  json: boolean;
  /** give up after this long with the execution open and no live worker */
  noWorkerAfterMs: number;
  pollMs?: number;
}

/** Tasks shown in the summary table (problems first). */
export const SUMMARY_TASKS = 20;

export async function waitAndReport(ctx: AppContext, executionId: number, opts: WaitOptions): Promise<number> {
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once("SIGINT", onSigint);
  let result;
  try {
    result = await followExecution(ctx.pool, executionId, {
      pollMs: opts.pollMs,
      workerAliveMs: ctx.config.deadWorkerTimeoutMs,
      noWorkerAfterMs: opts.noWorkerAfterMs,
      signal: abort.signal,
    });
  } finally {
    process.removeListener("SIGINT", onSigint);
  }
  if (result.end === "not_found") {
    process.stderr.write(`ebb: execution ${executionId} no longer exists (history pruned?)\n`);
    return EXIT.failure;
  }
  if (result.end === "no_worker") {
    process.stderr.write(
      `ebb: no ebb worker is alive (no heartbeat in ebb.worker_heartbeats for ${Math.round(result.waitedMs / 1000)}s): ` +
      `execution ${executionId} stays ${result.status} until a worker runs it (ebb start --roles worker); ` +
      `ebb stop ${executionId} cancels it\n`,
    );
    return EXIT.failure;
  }
  if (result.end === "interrupted") {
    process.stderr.write(`ebb: stopped waiting; execution ${executionId} is still ${result.status} (ebb stop ${executionId} stops it)\n`);
    return 130;
  }
  const detail = await readExecutionDetail(ctx.pool, executionId, { taskLimit: SUMMARY_TASKS });
  if (detail) await writeOut(opts.json ? renderJson(detail) : renderExecutionDetail(detail));
  if (result.status === "success") return EXIT.ok;
  const why = detail?.execution.error ?? (detail?.tasks.find((t) => t.error)?.error ?? "");
  process.stderr.write(`ebb: execution ${executionId} ended ${result.status === "error" ? "in error" : "stopped"}${why ? `: ${why}` : ""}\n`);
  return EXIT.failure;
}
