import type { AppContext } from "../service/context.js";
import { finalizeIfDone } from "./finalize.js";

export type StopResult = "requested" | "already_ended" | "not_found";

/**
 * Ask an execution to stop: the same as `UPDATE ebb.executions SET stop_requested = true`.
 * Tasks not started yet are stopped at once (trigger executions_after_stop); running ones
 * stop at their next checkpoint; the execution ends as 'stopped' when its last task ends.
 */
export async function requestStop(ctx: AppContext, executionId: number): Promise<StopResult> {
  const { rows } = await ctx.pool.query<{ status: string }>(
    `update ebb.executions set stop_requested = true
      where id = $1 and status in ('pending', 'running')
      returning status`,
    [executionId],
  );
  if (rows.length === 0) {
    const { rowCount } = await ctx.pool.query("select 1 from ebb.executions where id = $1", [executionId]);
    return rowCount ? "already_ended" : "not_found";
  }
  await finalizeIfDone(ctx.pool, executionId);
  return "requested";
}
