// ebb executions list [--policy P | --registry R] [--kind K] [--status S] [--limit N] [--json]
// ebb executions show <id> [--tasks N] [--json]
// History as tables for people, JSON for scripts (the same objects as GET /api/executions).
import type { Command } from "commander";
import {
  EXECUTION_STATUSES, findPolicy, findRegistry, listExecutions, readExecutionDetail, type ListExecutionsOptions,
} from "../../executions/execution_queries.js";
import { addDbOptions, withCliContext } from "../cli_session.js";
import { UsageError } from "../exit_codes.js";
import { oneOf, rowId, wholeNumber } from "../option_parsers.js";
import { renderExecutionDetail, renderExecutionList } from "../output/execution_view.js";
import { renderJson, writeOut } from "../output/json_output.js";

interface ListFlags {
  policy?: string;
  registry?: string;
  kind?: string;
  status?: (typeof EXECUTION_STATUSES)[number];
  limit: number;
  json?: boolean;
}

export function registerExecutions(program: Command): void {
  const group = program.command("executions").description("execution history: list and show");

  const list = group
    .command("list")
    .description("the latest executions, newest first, with live task and artifact counts")
    .option("--policy <name>", "only executions of this retention policy (name or id)")
    .option("--registry <name>", "only sync executions of this registry (name or id)")
    .option("--kind <kind>", "only executions of this kind (retention, sync, ...)")
    .option("--status <status>", `only executions in this status (${EXECUTION_STATUSES.join(", ")})`, oneOf(EXECUTION_STATUSES))
    .option("--limit <n>", "how many (default 20)", wholeNumber(1, 10_000), 20)
    .option("--json", "print a JSON array");
  addDbOptions(list);
  list.action(async (opts: Record<string, unknown> & ListFlags) => {
    if (opts.policy !== undefined && opts.registry !== undefined) throw new UsageError("--policy and --registry: give one of them, not both");
    await withCliContext(opts, async (ctx) => {
      const q: ListExecutionsOptions = { limit: opts.limit };
      if (opts.kind !== undefined) q.kind = opts.kind;
      if (opts.status !== undefined) q.status = opts.status;
      if (opts.policy !== undefined) {
        const policy = await findPolicy(ctx.pool, opts.policy);
        if (!policy) throw new UsageError(`--policy ${opts.policy}: no such policy`);
        Object.assign(q, { kind: "retention", targetId: policy.id });
      }
      if (opts.registry !== undefined) {
        const registry = await findRegistry(ctx.pool, opts.registry);
        if (!registry) throw new UsageError(`--registry ${opts.registry}: no such registry`);
        Object.assign(q, { kind: "sync", targetId: registry.id });
      }
      const items = await listExecutions(ctx.pool, q);
      await writeOut(opts.json ? renderJson(items) : renderExecutionList(items));
    });
  });

  const show = group
    .command("show")
    .description("one execution: status, counts, decisions by action and outcome, its tasks (problems first)")
    .argument("<id>", "execution id", rowId)
    .option("--tasks <n>", "tasks listed at most (default 50)", wholeNumber(0, 100_000), 50)
    .option("--json", "print JSON");
  addDbOptions(show);
  show.action(async (id: number, opts: Record<string, unknown> & { tasks: number; json?: boolean }) => {
    await withCliContext(opts, async (ctx) => {
      const detail = await readExecutionDetail(ctx.pool, id, { taskLimit: opts.tasks });
      if (!detail) throw new UsageError(`execution ${id}: no such execution`);
      await writeOut(opts.json ? renderJson(detail) : renderExecutionDetail(detail));
    });
  });
  for (const cmd of group.commands) cmd.exitOverride();
}
