-- Task jobs in two lanes: a task without a group gets its own job identifier.
--
-- A grouped task (e.g. one registry's deletions) runs in a named graphile-worker queue per
-- group slot, so at most taskGroupConcurrency tasks of a group run at once. graphile-worker
-- 0.17's localQueue (a batch of jobs fetched and locked in one statement) and batched
-- completion break that limit (graphile/worker#621: a batch fetch takes several jobs of one
-- named queue), so grouped tasks stay one job per fetch and completion
-- ('ebb.execution.task'). Tasks without a group (dry runs, the no-op kind) carry
-- 'ebb.execution.task.ungrouped': the worker runs them, and the plan jobs, in a second
-- graphile-worker runner with a localQueue and batched completion (src/worker/runner.ts):
-- one fetch and one completion statement per batch instead of two statements per job.
--
-- Jobs enqueued before this migration keep 'ebb.execution.task' and run in the one-by-one
-- lane, grouped or not.
--
-- ebb.plan_tasks of migration 0008 with, besides the identifier:
--  - graphile-worker's task identifiers inserted only while missing (an INSERT ... ON
--    CONFLICT DO NOTHING is a write attempt on every call);
--  - the last batch finalizes the execution only when it created no task: tasks created just
--    now are pending, so the execution cannot be done (finalize_execution took its advisory
--    lock and counted the tasks for nothing);
--  - it starts the execution (pending -> running, started_at), so a plan job whose payload
--    carries its execution (the scheduler's, src/executions/jobs.ts) needs no statement of its
--    own before planning: one round trip and one UPDATE of the execution row fewer per
--    execution in a midnight storm (BENCHMARKS.md). A stop requested before the planning is
--    handled as before: nothing planned, the execution ends as stopped. Plan jobs with only
--    an execution id (ebb.trigger_execution, ebb.release_queued) start the execution first,
--    as before; for them this update changes nothing.
create or replace function ebb.plan_tasks(
  p_execution_id bigint,
  p_keys         text[],
  p_groups       text[],
  p_payloads     jsonb[],
  p_max_attempts integer,
  p_group_slots  integer,
  p_last         boolean
) returns integer
language plpgsql
as $$
declare
  v_kind    text;
  v_status  text;
  v_stop    boolean;
  v_created integer := 0;
  v_ids     bigint[];
  v_groups  text[];
begin
  select e.kind, e.status, e.stop_requested or e.status not in ('pending', 'running')
    into v_kind, v_status, v_stop
    from ebb.executions e where e.id = p_execution_id;
  if v_kind is null then
    raise exception 'plan_tasks.p_execution_id: no execution %', p_execution_id using errcode = '22023';
  end if;
  if v_stop then
    update ebb.executions set planned = true where id = p_execution_id and not planned;
    perform ebb.finalize_execution(p_execution_id);
    return -1;
  end if;
  with created as (
    insert into ebb.tasks (execution_id, key, task_group, payload)
    select p_execution_id, x.k, x.g, coalesce(x.p, '{}')
      from unnest(p_keys, p_groups, p_payloads) as x(k, g, p)
    on conflict (execution_id, key) do nothing
    returning id, task_group
  )
  select array_agg(id), array_agg(task_group) into v_ids, v_groups from created;
  v_created := coalesce(cardinality(v_ids), 0);
  if v_created > 0 then
    -- the tasks inserted above are visible here (plpgsql: a new snapshot per statement)
    if (select count(*) from ebb_worker._private_tasks
         where identifier in ('ebb.execution.task', 'ebb.execution.task.ungrouped')) < 2 then
      insert into ebb_worker._private_tasks (identifier)
      values ('ebb.execution.task'), ('ebb.execution.task.ungrouped') on conflict do nothing;
    end if;
    insert into ebb_worker._private_job_queues (queue_name)
    select distinct format('ebb:%s:%s:%s', v_kind, c.g, c.id % greatest(1, p_group_slots))
      from unnest(v_ids, v_groups) as c(id, g) where c.g is not null
    on conflict do nothing;
    with jobs as (
      insert into ebb_worker._private_jobs (job_queue_id, task_id, payload, max_attempts)
      select q.id, tk.id, json_build_object('taskId', c.id), p_max_attempts
        from unnest(v_ids, v_groups) as c(id, g)
        join ebb_worker._private_tasks tk
          on tk.identifier = case when c.g is null then 'ebb.execution.task.ungrouped' else 'ebb.execution.task' end
        left join ebb_worker._private_job_queues q
          on q.queue_name = format('ebb:%s:%s:%s', v_kind, c.g, c.id % greatest(1, p_group_slots))
      returning id as job_id, (payload ->> 'taskId')::bigint as task_id
    )
    update ebb.tasks t set job_id = jobs.job_id from jobs where t.id = jobs.task_id;
  end if;
  if p_last then
    -- planned, and started if no one started it yet (the plan job did not, see above)
    update ebb.executions
       set planned = true, status = 'running', started_at = coalesce(started_at, now())
     where id = p_execution_id;
    -- tasks created just now are pending: the execution cannot be finished yet, and their
    -- finishers will finalize it (they see "planned" once this commits: their jobs are
    -- inserted by this same transaction)
    if v_created = 0 then
      perform ebb.finalize_execution(p_execution_id);
    end if;
  end if;
  if not p_last and v_status = 'pending' then
    update ebb.executions set status = 'running', started_at = coalesce(started_at, now())
     where id = p_execution_id;
  end if;
  return v_created;
end;
$$;
