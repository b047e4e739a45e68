// Execution history written with plain SQL (the seeding a user could do), for the CLI and
// JSON API tests: a registry WITH a credentials_ref (that must never be printed), a policy,
// four executions in different states with tasks and decisions, heartbeats, a stale
// repository and an overdue schedule.
import type pg from "pg";

export const SECRET_REF = "env:EBB_TEST_SECRET_REF_9f3c";

export interface SeededHistory {
  registryId: number;
  policyId: number;
  /** retention, success: 2 tasks, 6 decisions (3 retain, 2 deleted, 1 failed delete) */
  done: number;
  /** retention, running: 1 task running, 1 pending, 1 success */
  running: number;
  /** sync, error */
  failed: number;
  /** retention, pending, no task yet */
  pending: number;
}

export async function seedHistory(pool: pg.Pool): Promise<SeededHistory> {
  const one = async <T = { id: number }>(sql: string, params: unknown[] = []) => (await pool.query(sql, params)).rows[0] as T;
  const { id: registryId } = await one(
    `insert into ebb.registries (name, base_url, auth_kind, credentials_ref) values ('local', 'http://127.0.0.1:9', 'basic', $1) returning id`,
    [SECRET_REF],
  );
  const { id: appId } = await one(`insert into ebb.repositories (registry_id, name) values ($1, 'team/app') returning id`, [registryId]);
  await one(`insert into ebb.repositories (registry_id, name) values ($1, 'team/web') returning id`, [registryId]);
  await one(
    `insert into ebb.repositories (registry_id, name, stale, stale_reason, stale_since)
     values ($1, 'team/old', true, 'tags/list answered HTTP 500', now() - interval '1 hour') returning id`,
    [registryId],
  );
  const { id: policyId } = await one(`insert into ebb.policies (name, registry_id) values ('keep-recent', $1) returning id`, [registryId]);

  const exec = async (kind: string, target: number, status: string, extra = "") =>
    (await one(
      `insert into ebb.executions (kind, target_id, trigger, status, planned, started_at, ended_at, error)
       values ($1, $2, 'manual', $3, $3 <> 'pending',
               case when $3 <> 'pending' then now() - interval '10 minutes' end,
               case when $3 in ('success', 'error', 'stopped') then now() - interval '9 minutes' end,
               ${extra ? "$4" : "null"}) returning id`,
      extra ? [kind, target, status, extra] : [kind, target, status],
    )).id;
  const done = await exec("retention", policyId, "success");
  const running = await exec("retention", policyId, "running");
  const failed = await exec("sync", registryId, "error", "planning failed: registry said 401");
  const pending = await exec("retention", policyId, "pending");

  const task = async (execution: number, key: string, status: string, counts: [number, number, number, number], error: string | null = null) =>
    (await one(
      `insert into ebb.tasks (execution_id, key, status, attempts, started_at, ended_at, total, retained, deleted, errors, error)
       values ($1, $2, $3, 1, now() - interval '5 minutes', case when $3 in ('success', 'error', 'stopped') then now() end, $4, $5, $6, $7, $8)
       returning id`,
      [execution, key, status, ...counts, error],
    )).id;
  const t1 = await task(done, "team/app", "success", [5, 3, 2, 1]);
  await task(done, "team/web", "success", [1, 1, 0, 0]);
  await task(running, "team/app", "running", [0, 0, 0, 0]);
  await task(running, "team/web", "pending", [0, 0, 0, 0]);
  await task(running, "team/zzz", "success", [2, 2, 0, 0]);
  await task(failed, "registry:local", "error", [0, 0, 0, 0], "catalog: HTTP 401");

  const decision = (digest: string, action: string, outcome: string, reason: string, error: string | null = null) =>
    pool.query(
      `insert into ebb.decisions (execution_id, task_id, repository_id, repository, digest, tags, action, reason, role, outcome, error, rule)
       values ($1, $2, $3, 'team/app', $4, '{v1}', $5, $6, 'candidate', $7, $8, case when $5 = 'retain' then 0 end)`,
      [done, t1, appId, digest, action, reason, outcome, error],
    );
  await decision("sha256:a1", "retain", "none", "retained by rule 0 (latestPushedK 3)");
  await decision("sha256:a2", "retain", "none", "retained by rule 0 (latestPushedK 3)");
  await decision("sha256:a3", "retain", "none", "retained by rule 0 (latestPushedK 3)");
  await decision("sha256:a4", "delete", "deleted", "not retained by any rule");
  await decision("sha256:a5", "delete", "deleted", "not retained by any rule");
  await decision("sha256:a6", "delete", "failed", "not retained by any rule", "registry: HTTP 500");
  // what finalize writes when an execution ends: the aggregates of its tasks
  await pool.query(
    `update ebb.executions e
        set tasks_total = a.tasks, tasks_failed = a.failed, total = a.total, retained = a.retained, deleted = a.deleted, errors = a.errors
       from (select execution_id, count(*)::int as tasks, count(*) filter (where status = 'error')::int as failed,
                    sum(total) as total, sum(retained) as retained, sum(deleted) as deleted, sum(errors) as errors
               from ebb.tasks group by execution_id) a
      where a.execution_id = e.id and e.status in ('success', 'error', 'stopped')`,
  );
  await pool.query(
    `insert into ebb.retention_runs (execution_id, policy_id, policy_name, registry_id, policy, rule_positions, dry_run, evaluated_at)
     values ($1, $2, 'keep-recent', $3, '{}', '{0}', false, now() - interval '10 minutes')`,
    [done, policyId, registryId],
  );

  await pool.query(
    `insert into ebb.worker_heartbeats (pool_id, hostname, pid, last_seen_at)
     values ('pool-alive', 'host-a', 101, now()), ('pool-dead', 'host-b', 202, now() - interval '1 hour')`,
  );
  await pool.query(
    `insert into ebb.schedules (kind, target_id, cron, next_due_at) values ('sync', $1, '*/5 * * * *', now() - interval '120 seconds')`,
    [registryId],
  );
  return { registryId, policyId, done, running, failed, pending };
}
