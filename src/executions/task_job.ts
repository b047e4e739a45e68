import type { Task as GraphileTask } from "graphile-worker";
import { bookkeepingOptions } from "../db/bookkeeping_statement.js";
import type { AppContext } from "../service/context.js";
import { executionFromColumns, PermanentTaskError, StopRequested, type KindMap, type TaskCounts } from "./kind.js";
import { TaskControlImpl, type LogLine } from "./task_control.js";
import { TaskStatements } from "./task_statements.js";

export interface TaskJobOptions {
  stopCheckIntervalMs: number;
}

/**
 * The graphile-worker task that runs one ebb task. The task row is claimed by one guarded
 * UPDATE (pending/running -> running, attempts + 1; coalesced with the claims of the jobs
 * starting alongside, task_statements.ts); its final UPDATE is guarded by that
 * attempt number, so a task re-run after a crash recovery can end only once: a late
 * finisher from a process declared dead changes nothing. A task already ended (e.g. stopped
 * before it started) is not run again.
 */
export function taskJob(ctx: AppContext, kinds: KindMap, opts: TaskJobOptions): GraphileTask {
  // claims and ends of the jobs running side by side go out as one statement each
  const statements = new TaskStatements(ctx.pool, bookkeepingOptions(ctx.config));
  return async (rawPayload, helpers) => {
    const taskId = Number((rawPayload as { taskId?: unknown }).taskId);
    // the claim reads stop_requested: stops committed after it are heard by LISTEN (task_control.ts)
    const claimSentAt = Date.now();
    const row = await statements.claim(taskId);
    if (!row) {
      // already ended (stopped before start, or finished before a crash): maybe the last one
      await ctx.pool.query("select ebb.finalize_execution(execution_id) from ebb.tasks where id = $1", [taskId]);
      return;
    }
    const attempt = row.attempts;
    // the task's end in one statement: status, counts, details, its last log lines, and the
    // execution's end when it was the last task (ebb.finish_task)
    const finish = (status: "success" | "error" | "stopped", error: string | null, counts: TaskCounts, details: Record<string, unknown>, lines: LogLine[] = []) =>
      statements.finish({
        taskId: row.id, executionId: row.execution_id, attempt, status, error, ...counts,
        details: Object.keys(details).length ? details : null, lines,
      });
    const execution = executionFromColumns(row.execution_id, row);
    const zero = { total: 0, retained: 0, deleted: 0, errors: 0 };
    if (row.stop_requested) return finish("stopped", "stop requested before start", zero, {});
    const kind = kinds.get(row.kind);
    if (!kind) return finish("error", `no execution kind named ${row.kind} is registered in this ebb process`, zero, {});

    const logger = ctx.logger.child({ kind: execution.kind, executionId: execution.id, taskId: row.id, key: row.key, attempt });
    const control = new TaskControlImpl(ctx.pool, execution, row.id, opts.stopCheckIntervalMs, helpers.abortSignal, logger, claimSentAt);
    const task = { id: row.id, executionId: row.execution_id, key: row.key, group: row.task_group, payload: row.payload, attempt };
    try {
      await kind.runTask(ctx, task, control);
      await finish("success", null, control.counts, control.details, await control.finalLines());
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof StopRequested && err.reason === "stop requested") {
        await finish("stopped", "stop requested", control.counts, control.details, await control.finalLines());
        return;
      }
      const lastAttempt = helpers.job.attempts >= helpers.job.max_attempts;
      if (err instanceof PermanentTaskError || lastAttempt) {
        const why = lastAttempt && !(err instanceof PermanentTaskError) ? `failed after ${helpers.job.attempts} attempts: ${message}` : message;
        await finish("error", why, control.counts, control.details, await control.finalLines());
        return;
      }
      await control.flush(true).catch(() => {});
      // transient: keep the task running, note the error, let graphile-worker retry with backoff
      await ctx.pool.query("update ebb.tasks set error = $3 where id = $1 and attempts = $2 and status = 'running'", [
        row.id, attempt, `attempt ${helpers.job.attempts} failed (will retry): ${message}`,
      ]);
      throw err;
    } finally {
      control.close();
    }
  };
}
