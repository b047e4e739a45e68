-- The task batches of several executions planned by ONE set-based call.
--
-- The plan jobs running side by side in a worker send their task batches together
-- (src/executions/plan_statements.ts). Until now that one statement called ebb.plan_tasks
-- (migration 0009) once per execution: per execution a plpgsql call, a tasks INSERT, a jobs
-- INSERT, an UPDATE of the tasks and one of the execution. In the midnight storm (10,000
-- executions) that was the most expensive statement ebb sent (1.64 ms of PostgreSQL time per
-- call of ~5 executions, pg_stat_statements). ebb.plan_task_batches does the same work with
-- one statement per step for all the executions of the call (1.09 ms per call measured the
-- same way, BENCHMARKS.md).
--
-- Same semantics as ebb.plan_tasks, execution by execution:
--  - an unknown execution is an error (the worker then plans each batch of the call alone,
--    so one bad batch never fails the others);
--  - an execution with a stop request, or already ended, gets nothing: its planning is marked
--    done, it is finalized, and its answer is -1;
--  - task keys are unique per execution: keys planned before a crash are skipped, and only
--    new tasks get jobs;
--  - a task with a group goes to one of the batch's group_slots named queues of its group
--    (round-robin by task id), a task without one to the batched lane's identifier;
--  - a non-last batch starts a pending execution; the last batch marks the planning done and
--    starts it, and finalizes it only when it created no task (tasks created now are pending).
-- Executions are finalized in id order (their advisory locks taken in the order every other
-- batch of finishers takes them: no deadlock).
--
-- p_batches: a JSON array of {execution_id, keys: [text], groups: [text|null],
-- payloads: [object|null], max_attempts, group_slots, last}; an execution at most once.
-- Returns one row per batch: the tasks created, or -1.
create function ebb.plan_task_batches(p_batches jsonb)
returns table (execution_id bigint, created integer)
language plpgsql
as $$
#variable_conflict use_column
declare
  -- the batches as arrays in execution id order: the statements below reach executions by
  -- primary key through them (joined to the jsonb itself, the planner expected 100 rows and
  -- scanned the whole executions table: 0.8 ms a statement at 10,000 executions)
  v_execution_ids bigint[];
  v_last          boolean[];
  v_max_attempts  integer[];
  v_group_slots   integer[];
  v_kinds         text[];
  v_unknown       bigint;
  v_stopping      bigint[];
  -- the tasks created, in id order, and per task its job's queue (null: none) and attempts
  v_ids           bigint[];
  v_execs         bigint[];
  v_queues        text[];
  v_attempts      integer[];
  v_grouped_task  integer;
  v_plain_task    integer;
  v_id            bigint;
begin
  select array_agg(b.execution_id order by b.execution_id), array_agg(b.last order by b.execution_id),
         array_agg(b.max_attempts order by b.execution_id), array_agg(b.group_slots order by b.execution_id)
    into v_execution_ids, v_last, v_max_attempts, v_group_slots
    from jsonb_to_recordset(p_batches) as b(execution_id bigint, last boolean, max_attempts int, group_slots int);
  select x.id into v_unknown
    from unnest(v_execution_ids) as x(id)
   where not exists (select 1 from ebb.executions e where e.id = x.id)
   limit 1;
  if v_unknown is not null then
    raise exception 'plan_task_batches.p_batches: no execution %', v_unknown using errcode = '22023';
  end if;
  select array_agg(e.kind order by e.id),
         coalesce(array_agg(e.id order by e.id) filter (where e.stop_requested or e.status not in ('pending', 'running')), '{}')
    into v_kinds, v_stopping
    from ebb.executions e where e.id = any (v_execution_ids);

  with created as (
    -- task ids in execution and batch order (the sort below the insert: offset 0)
    insert into ebb.tasks (execution_id, key, task_group, payload)
    select s.execution_id, s.key, s.task_group, s.payload
      from (select b.execution_id, t.k #>> '{}' as key, t.g #>> '{}' as task_group,
                   coalesce(nullif(t.p, 'null'::jsonb), '{}') as payload
              from jsonb_to_recordset(p_batches) as b(execution_id bigint, keys jsonb, groups jsonb, payloads jsonb),
                   rows from (jsonb_array_elements(b.keys), jsonb_array_elements(b.groups), jsonb_array_elements(b.payloads))
                     with ordinality as t(k, g, p, n)
             where b.execution_id <> all (v_stopping)
             order by b.execution_id, t.n
            offset 0) s
    on conflict (execution_id, key) do nothing
    returning id, execution_id, task_group
  )
  -- a grouped task's named queue: as ebb.plan_tasks names it (kind, group, slot)
  select array_agg(c.id order by c.id), array_agg(c.execution_id order by c.id),
         array_agg(case when c.task_group is not null
                        then format('ebb:%s:%s:%s', x.kind, c.task_group, c.id % greatest(1, x.group_slots)) end order by c.id),
         array_agg(x.max_attempts order by c.id)
    into v_ids, v_execs, v_queues, v_attempts
    from created c
    join unnest(v_execution_ids, v_kinds, v_max_attempts, v_group_slots) as x(execution_id, kind, max_attempts, group_slots)
      on x.execution_id = c.execution_id;

  if cardinality(v_ids) > 0 then
    if (select count(*) from ebb_worker._private_tasks
         where identifier in ('ebb.execution.task', 'ebb.execution.task.ungrouped')) < 2 then
      insert into ebb_worker._private_tasks (identifier)
      values ('ebb.execution.task'), ('ebb.execution.task.ungrouped') on conflict do nothing;
    end if;
    select min(id) filter (where identifier = 'ebb.execution.task'),
           min(id) filter (where identifier = 'ebb.execution.task.ungrouped')
      into v_grouped_task, v_plain_task
      from ebb_worker._private_tasks where identifier in ('ebb.execution.task', 'ebb.execution.task.ungrouped');
    insert into ebb_worker._private_job_queues (queue_name)
    select distinct q.name from unnest(v_queues) as q(name)
     where q.name is not null
       and not exists (select 1 from ebb_worker._private_job_queues x where x.queue_name = q.name)
    on conflict do nothing;
    with jobs as (
      insert into ebb_worker._private_jobs (job_queue_id, task_id, payload, max_attempts)
      select (select q.id from ebb_worker._private_job_queues q where q.queue_name = c.queue),
             case when c.queue is null then v_plain_task else v_grouped_task end,
             json_build_object('taskId', c.id), c.attempts
        from unnest(v_ids, v_queues, v_attempts) with ordinality as c(id, queue, attempts, n)
       order by c.n
      returning id as job_id, (payload ->> 'taskId')::bigint as task_id
    )
    update ebb.tasks t set job_id = jobs.job_id from jobs where t.id = jobs.task_id;
  end if;

  -- started (pending -> running); the last batch also marks the planning done
  update ebb.executions e
     set planned = e.planned or x.last, status = 'running', started_at = coalesce(e.started_at, now())
    from unnest(v_execution_ids, v_last) as x(id, last)
   where e.id = x.id and e.id = any (v_execution_ids) and e.id <> all (v_stopping) and (x.last or e.status = 'pending');

  -- finalized in id order: the stopped ones, and last batches that created no task
  for v_id in
    select x.id from unnest(v_execution_ids, v_last) as x(id, last)
     where x.id = any (v_stopping) or (x.last and x.id <> all (coalesce(v_execs, '{}')))
     order by x.id
  loop
    update ebb.executions set planned = true where id = v_id and not planned;
    perform ebb.finalize_execution(v_id);
  end loop;

  return query
    select x.id,
           case when x.id = any (v_stopping) then -1
                else (select count(*)::int from unnest(coalesce(v_execs, '{}')) as c(id) where c.id = x.id) end
      from unnest(v_execution_ids) as x(id);
end;
$$;

comment on function ebb.plan_task_batches(jsonb) is
  'the task batches of several executions, set-based (ebb.plan_tasks for each, in one call); one row per batch: tasks created, or -1';
