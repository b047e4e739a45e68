// ebb run <policy> [--dry-run] [--wait] [--json] [--worker-timeout <s>]
//
// Triggers a manual retention execution of a policy (by name, or by id) - the same as
// inserting into ebb.executions and its plan job in one transaction (triggerExecution) -
// and prints its id. The work is done by the ebb workers (`ebb start`), never by this
// command: --wait follows the execution to its end (progress bar on a TTY, summary table),
// and gives up with exit 1 and a message saying so when no worker is alive.
import type { Command } from "commander";
import { findPolicy } from "../../executions/execution_queries.js";
import { triggerExecution } from "../../executions/trigger.js";
import { addDbOptions, withCliContext } from "../cli_session.js";
import { UsageError } from "../exit_codes.js";
import { wholeNumber } from "../option_parsers.js";
import { renderJson, writeOut } from "../output/json_output.js";
import { waitAndReport } from "../output/wait_report.js";

export interface WaitFlags {
  wait?: boolean;
  json?: boolean;
  workerTimeout: number;
}

/** --wait, --json and --worker-timeout, shared by run, sync and stop. */
export function addWaitOptions(cmd: Command, what: string): Command {
  return cmd
    .option("--wait", `follow the ${what} to its end: progress on a TTY, then a summary; exit 1 unless it succeeds`)
    .option("--json", "print JSON on stdout ({\"execution_id\"} or, with --wait, the summary of ebb executions show --json)")
    .option("--worker-timeout <seconds>", "with --wait: give up (exit 1) when no ebb worker has been alive for this long", wholeNumber(1, 86_400), 15);
}

/** Print the id (or JSON), then follow it when asked. Returns the exit code. */
export async function reportTriggered(
  ctx: Parameters<typeof waitAndReport>[0],
  executionId: number,
  flags: WaitFlags,
  describe: string,
): Promise<number> {
  if (flags.json && !flags.wait) await writeOut(renderJson({ execution_id: executionId }));
  if (!flags.json) await writeOut(`${executionId}\n`);
  process.stderr.write(`execution ${executionId} triggered: ${describe}\n`);
  if (!flags.wait) return 0;
  return waitAndReport(ctx, executionId, { json: Boolean(flags.json), noWorkerAfterMs: flags.workerTimeout * 1000 });
}

export function registerRun(program: Command): void {
  const cmd = program
    .command("run")
    .description("run a retention policy now (a manual execution done by the ebb workers) and print the execution id")
    .argument("<policy>", "policy name (or id)")
    .option("--dry-run", "decide and record every decision, delete nothing (a dry-run policy never deletes anyway)");
  addWaitOptions(cmd, "execution");
  addDbOptions(cmd);
  cmd.action(async (policyRef: string, opts: Record<string, unknown> & WaitFlags & { dryRun?: boolean }) => {
    process.exitCode = await withCliContext(opts, async (ctx) => {
      const policy = await findPolicy(ctx.pool, policyRef);
      if (!policy) throw new UsageError(`policy ${policyRef}: no such policy (ebb policy list shows them)`);
      const dryRun = Boolean(opts.dryRun) || policy.dry_run;
      const id = await triggerExecution(ctx, { kind: "retention", targetId: policy.id, dryRun: Boolean(opts.dryRun) });
      const notes = [`policy ${policy.name} (id ${policy.id})`];
      if (dryRun) notes.push(opts.dryRun ? "dry run" : "dry run (the policy is set to dry_run)");
      if (!policy.enabled) notes.push("the policy is disabled: only its schedule is paused, manual runs still run");
      return reportTriggered(ctx, id, opts, notes.join(", "));
    });
  });
}
