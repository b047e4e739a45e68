-- The execution bookkeeping of a job in ONE statement each (one round trip, one commit),
-- instead of 3-8 separate statements per job. Same semantics as before; the midnight storm
-- benchmark measured the statements per job as ebb's main cost next to graphile-worker's own
-- (BENCHMARKS.md). The worker calls:
--   ebb.plan_tasks(...)        a batch of tasks + their jobs (+ "planning done" on the last batch)
--   ebb.finish_planning(...)   planning done (no tasks, or planning failed)
--   ebb.finish_task(...)       a task's final status, counts, details and log lines
--   ebb.finalize_execution(id) end the execution when its last task has ended
-- They are plain SQL functions: an operator may call finalize_execution by hand, it is a no-op
-- unless the execution is really done.

-- Per-execution lock space of pg_advisory_xact_lock(int4, int4) (src/db/advisory_locks.ts:
-- 0x0ebb = 3771 holds ebb's global locks; 3772 = "finalize execution <id>").
--
-- End an execution when it is planned and none of its tasks is open. Whoever ends a task (or
-- the planning) writes its own row FIRST, then calls this in the same transaction. The lock
-- serialises only the finishers of ONE execution, and only from here to their commit (well
-- under a millisecond plus the commit): the second one in sees the first one's commit (a new
-- snapshot per statement), so the last finisher always finalizes and none is missed. Tasks
-- never update the execution row while they run: no row-lock pile-up (Harbor issues
-- 16640/17114).
--
-- Status (Harbor's aggregation): any task error or a planning error -> error; else a stop
-- request or a stopped task -> stopped; else success. Returns the new status, or null when
-- the execution is not finished (or had already ended).
create function ebb.finalize_execution(p_execution_id bigint) returns text
language plpgsql
as $$
declare
  v_status   text;
  v_schedule bigint;
begin
  perform pg_advisory_xact_lock(3772, (p_execution_id % 2147483647)::int);
  if not exists (select 1 from ebb.executions e
                  where e.id = p_execution_id and e.planned and e.status in ('pending', 'running'))
     or exists (select 1 from ebb.tasks t
                 where t.execution_id = p_execution_id and t.status in ('pending', 'running')) then
    return null;
  end if;
  with agg as (
    select count(*)::int as tasks,
           count(*) filter (where status = 'error')::int as failed,
           count(*) filter (where status = 'stopped')::int as stopped,
           coalesce(sum(total), 0) as total, coalesce(sum(retained), 0) as retained,
           coalesce(sum(deleted), 0) as deleted, coalesce(sum(errors), 0) as errors
      from ebb.tasks where execution_id = p_execution_id)
  update ebb.executions e
     set status = case when e.error is not null or agg.failed > 0 then 'error'
                       when e.stop_requested or agg.stopped > 0 then 'stopped'
                       else 'success' end,
         ended_at = now(), started_at = coalesce(e.started_at, now()),
         tasks_total = agg.tasks, tasks_failed = agg.failed,
         total = agg.total, retained = agg.retained, deleted = agg.deleted, errors = agg.errors
    from agg
   where e.id = p_execution_id and e.status in ('pending', 'running') and e.planned
  returning e.status, e.schedule_id into v_status, v_schedule;
  if v_schedule is not null then
    perform ebb.release_queued(v_schedule);
  end if;
  return v_status;
end;
$$;

comment on function ebb.finalize_execution(bigint) is
  'end the execution if it is planned and all its tasks ended; returns the new status or null';

-- overlap = 'queue': when an execution of the schedule ends, the oldest one waiting behind it
-- gets its plan job (same transaction as the end of the previous one). Returns its id or null.
create function ebb.release_queued(p_schedule_id bigint) returns bigint
language plpgsql
as $$
declare
  v_next bigint;
  v_job  bigint;
begin
  select w.id into v_next
    from ebb.executions w
   where w.schedule_id = p_schedule_id and w.status = 'pending' and not w.enqueued
     and not exists (select 1 from ebb.executions a
                      where a.schedule_id = p_schedule_id and a.enqueued and a.status in ('pending', 'running'))
   order by w.fire_time
   limit 1
   for update skip locked;
  if v_next is null then
    return null;
  end if;
  -- the same plan job src/executions/jobs.ts enqueues (max_attempts 5)
  select (ebb_worker.add_job('ebb.execution.plan', json_build_object('executionId', v_next),
                             max_attempts => 5)).id
    into v_job;
  update ebb.executions set plan_job_id = v_job, enqueued = true where id = v_next;
  return v_next;
end;
$$;

-- A task's end: status, error, counts, details and its last log lines in one call, then the
-- execution's end if it was the last task. Guarded by the attempt number: a late finisher of
-- an attempt that crash recovery already replaced changes nothing (but still lets the
-- execution end). Returns the execution's new status when this ended it, else null.
create function ebb.finish_task(
  p_task_id     bigint,
  p_attempt     integer,
  p_status      text,
  p_error       text,
  p_total       integer,
  p_retained    integer,
  p_deleted     integer,
  p_errors      integer,
  p_details     jsonb,
  p_log_at      timestamptz[] default null,
  p_log_level   text[] default null,
  p_log_message text[] default null
) returns text
language plpgsql
as $$
declare
  v_execution bigint;
begin
  if p_status not in ('success', 'error', 'stopped') then
    raise exception 'finish_task.p_status: must be success, error or stopped (got %)', p_status
      using errcode = '22023';
  end if;
  if coalesce(cardinality(p_log_message), 0) > 0 then
    insert into ebb.task_logs (task_id, at, level, message)
    select p_task_id, l.at, l.level, l.message
      from unnest(p_log_at, p_log_level, p_log_message) as l(at, level, message);
  end if;
  update ebb.tasks
     set status = p_status, ended_at = now(), error = p_error,
         total = p_total, retained = p_retained, deleted = p_deleted, errors = p_errors, details = p_details
   where id = p_task_id and attempts = p_attempt and status = 'running';
  select execution_id into v_execution from ebb.tasks where id = p_task_id;
  if v_execution is null then
    return null;
  end if;
  return ebb.finalize_execution(v_execution);
end;
$$;

-- A batch of an execution's tasks and their graphile-worker jobs (one add_jobs call: one
-- NOTIFY). Task keys are unique per execution: keys planned before a crash are skipped, so
-- planning can run again. A task with a group goes to one of p_group_slots named queues of
-- its group (round-robin by task id): jobs of a named queue run one at a time, so at most
-- p_group_slots tasks of a group run at once. With p_last the planning is marked done in the
-- same transaction (and the execution ends if its tasks already have).
-- Returns the number of tasks created, or -1 when a stop was requested (nothing inserted;
-- the planning is marked done) or the execution had already ended.
create function ebb.plan_tasks(
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
  v_stop    boolean;
  v_created integer := 0;
  v_ids     bigint[];
  v_groups  text[];
begin
  select e.kind, e.stop_requested or e.status not in ('pending', 'running')
    into v_kind, v_stop
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
    with jobs as (
      select j.id as job_id, (j.payload ->> 'taskId')::bigint as task_id
        from ebb_worker.add_jobs((
          select array_agg(row('ebb.execution.task', json_build_object('taskId', c.id),
                               case when c.g is null then null
                                    else format('ebb:%s:%s:%s', v_kind, c.g, c.id % greatest(1, p_group_slots)) end,
                               null, p_max_attempts, null, null, null)::ebb_worker.job_spec)
            from unnest(v_ids, v_groups) as c(id, g))) j
    )
    update ebb.tasks t set job_id = jobs.job_id from jobs where t.id = jobs.task_id;
  end if;
  if p_last then
    update ebb.executions set planned = true where id = p_execution_id;
    perform ebb.finalize_execution(p_execution_id);
  end if;
  return v_created;
end;
$$;

-- Planning done without a last batch to carry it: the kind planned no task at all, or the
-- planning failed for good (p_error: the execution then ends as error). Returns the
-- execution's new status when this ended it, else null.
create function ebb.finish_planning(p_execution_id bigint, p_error text default null) returns text
language plpgsql
as $$
begin
  update ebb.executions set planned = true, error = coalesce(p_error, error) where id = p_execution_id;
  return ebb.finalize_execution(p_execution_id);
end;
$$;
