import type { AppContext } from "../service/context.js";

export interface TriggerRequest {
  kind: string;
  targetId: number;
  dryRun?: boolean;
  /** 'manual' (ebb run, API) or 'event' (e.g. a registry notification); default manual */
  trigger?: "manual" | "event";
}

/**
 * Start an execution now, outside any schedule. The work is ebb.trigger_execution() (the
 * same function users call from SQL): the execution row and its plan job in
 * one transaction. Returns the execution id. An unknown kind is refused by the database
 * (foreign key to ebb.execution_kinds).
 */
export async function triggerExecution(ctx: AppContext, req: TriggerRequest): Promise<number> {
  if (!Number.isSafeInteger(req.targetId) || req.targetId <= 0) throw new Error(`targetId: must be a positive whole number (got ${req.targetId})`);
  const { rows } = await ctx.pool.query<{ id: number }>(
    "select ebb.trigger_execution($1, $2, $3, $4) as id",
    [req.kind, req.targetId, req.dryRun ?? false, req.trigger ?? "manual"],
  );
  return rows[0]!.id;
}
