import type pg from "pg";
import { WORKER_SCHEMA } from "../db/migrate.js";
import type { Execution } from "./kind.js";

/** graphile-worker task identifiers of the execution framework. */
export const JOB = {
  /** payload {executionId}: start an execution and enqueue its tasks in batches */
  plan: "ebb.execution.plan",
  /** payload {taskId}: run one task of an execution that has a group (in its group's named queue) */
  task: "ebb.execution.task",
  /** payload {taskId}: run one task of an execution without a group */
  ungroupedTask: "ebb.execution.task.ungrouped",
} as const;

/** Attempts of a plan job (planning is idempotent: tasks are keyed per execution). */
export const PLAN_MAX_ATTEMPTS = 5;

export interface JobSpec {
  identifier: string;
  payload: Record<string, unknown>;
  /** jobs of one named queue run one at a time (graphile-worker semantics) */
  queueName?: string | null;
  maxAttempts?: number;
  runAt?: Date | null;
  priority?: number;
}

export type Queryable = Pick<pg.PoolClient, "query">;

/**
 * Add many jobs with ONE call of ebb_worker.add_jobs: one statement and one NOTIFY for the
 * whole batch (per-job adds send one NOTIFY each and wake every idle worker each time).
 * Runs on the caller's client, so the jobs commit or roll back with the caller's rows.
 * Returns the job ids with their payloads (to map them back to tasks/executions).
 */
export async function addJobs(client: Queryable, specs: JobSpec[]): Promise<{ id: number; payload: Record<string, unknown> }[]> {
  if (specs.length === 0) return [];
  const { rows } = await client.query<{ id: number; payload: Record<string, unknown> }>(
    `select j.id, j.payload
       from ${WORKER_SCHEMA}.add_jobs((
         select array_agg(row(s.identifier, s.payload, s.queue_name, s.run_at, s.max_attempts, null, s.priority, null)::${WORKER_SCHEMA}.job_spec)
           from unnest($1::text[], $2::json[], $3::text[], $4::timestamptz[], $5::int[], $6::int[])
                as s(identifier, payload, queue_name, run_at, max_attempts, priority)
       )) j`,
    [
      specs.map((s) => s.identifier),
      specs.map((s) => JSON.stringify(s.payload)),
      specs.map((s) => s.queueName ?? null),
      specs.map((s) => s.runAt ?? null),
      specs.map((s) => s.maxAttempts ?? null),
      specs.map((s) => s.priority ?? null),
    ],
  );
  return rows;
}

/** A plan job's payload: the execution's id, and the execution itself when the enqueuer has it. */
export interface PlanJobPayload {
  executionId: number;
  /** lets the plan job plan without reading (and separately starting) the execution first */
  execution?: { kind: string; targetId: number; scheduleId: number | null; fireTime: string; trigger: Execution["trigger"]; dryRun: boolean };
}

/**
 * Enqueue the plan jobs of executions (already inserted, same transaction) and remember
 * each job id on its execution (the reconciler uses it to find lost work). The payload
 * carries the execution (PlanJobPayload): ebb.plan_tasks starts it.
 */
export async function enqueuePlanJobs(client: Queryable, executions: Execution[]): Promise<void> {
  if (executions.length === 0) return;
  const jobs = await addJobs(
    client,
    executions.map((e) => {
      const payload: PlanJobPayload = {
        executionId: e.id,
        execution: { kind: e.kind, targetId: e.targetId, scheduleId: e.scheduleId, fireTime: e.fireTime.toISOString(), trigger: e.trigger, dryRun: e.dryRun },
      };
      return { identifier: JOB.plan, payload: payload as unknown as Record<string, unknown>, maxAttempts: PLAN_MAX_ATTEMPTS };
    }),
  );
  await client.query(
    `update ebb.executions e set plan_job_id = j.job_id, enqueued = true
       from unnest($1::bigint[], $2::bigint[]) as j(execution_id, job_id)
      where e.id = j.execution_id`,
    [jobs.map((j) => Number(j.payload.executionId)), jobs.map((j) => j.id)],
  );
}
