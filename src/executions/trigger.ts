import type { AppContext } from "../service/context.js";
import { enqueuePlanJobs } from "./jobs.js";

export interface TriggerRequest {
  kind: string;
  targetId: number;
  dryRun?: boolean;
  /** 'manual' (ebb run, API) or 'event' (e.g. a registry notification); default manual */
  trigger?: "manual" | "event";
}

/**
 * Start an execution now, outside any schedule: the execution row and its plan job in one
 * transaction. Returns the execution id. An unknown kind is refused by the database
 * (foreign key to ebb.execution_kinds).
 */
export async function triggerExecution(ctx: AppContext, req: TriggerRequest): Promise<number> {
  if (!Number.isSafeInteger(req.targetId) || req.targetId <= 0) throw new Error(`targetId: must be a positive whole number (got ${req.targetId})`);
  const client = await ctx.pool.connect();
  try {
    await client.query("begin");
    const { rows } = await client.query<{ id: number }>(
      `insert into ebb.executions (kind, target_id, trigger, dry_run) values ($1, $2, $3, $4) returning id`,
      [req.kind, req.targetId, req.trigger ?? "manual", req.dryRun ?? false],
    );
    const id = rows[0]!.id;
    await enqueuePlanJobs(client, [id]);
    await client.query("commit");
    return id;
  } catch (err) {
    await client.query("rollback").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
