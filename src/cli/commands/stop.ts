// ebb stop <execution> [--wait]: the same as UPDATE ebb.executions SET stop_requested = true.
// Tasks not started are stopped at once, running ones at their next checkpoint (between two
// deletions). Stopping an execution that already ended is not an error (exit 0, says so).
import type { Command } from "commander";
import { readExecution } from "../../executions/execution_queries.js";
import { requestStop } from "../../executions/stop.js";
import { addDbOptions, withCliContext } from "../cli_session.js";
import { UsageError } from "../exit_codes.js";
import { rowId } from "../option_parsers.js";
import { renderJson, writeOut } from "../output/json_output.js";
import { waitAndReport } from "../output/wait_report.js";
import { addWaitOptions, type WaitFlags } from "./run.js";

export function registerStop(program: Command): void {
  const cmd = program
    .command("stop")
    .description("ask a running execution to stop (honoured between units of work, deletions included)")
    .argument("<execution>", "execution id", rowId);
  addWaitOptions(cmd, "execution");
  addDbOptions(cmd);
  cmd.action(async (id: number, opts: Record<string, unknown> & WaitFlags) => {
    process.exitCode = await withCliContext(opts, async (ctx) => {
      const result = await requestStop(ctx, id);
      if (result === "not_found") throw new UsageError(`execution ${id}: no such execution`);
      const now = await readExecution(ctx.pool, id);
      if (opts.json && !opts.wait) await writeOut(renderJson({ execution_id: id, result, status: now?.status ?? null }));
      if (!opts.json) {
        await writeOut(result === "requested"
          ? `stop requested for execution ${id} (now ${now?.status ?? "?"})\n`
          : `execution ${id} already ended (${now?.status ?? "?"}): nothing to stop\n`);
      }
      if (!opts.wait || result !== "requested") return 0;
      const code = await waitAndReport(ctx, id, { json: Boolean(opts.json), noWorkerAfterMs: opts.workerTimeout * 1000 });
      // the stop we asked for happened: that is success for `ebb stop --wait`
      const after = await readExecution(ctx.pool, id);
      return after?.status === "stopped" || after?.status === "success" ? 0 : code;
    });
  });
}
