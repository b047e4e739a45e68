-- Every SQL function of schema ebb, one definition each, grouped by concern; each trigger
-- function is followed by the CREATE TRIGGER statements that call it. The tables are in
-- 0001_schema.sql; docs/sql.md lists the API. This file is part of the baseline and is never
-- edited once released: a changed function is `create or replace` in a new migration.
--
-- Sections: 1. cron and time zone checks  2. schedules  3. executions (start, plan, finish,
--           stop)  4. retention policies  5. catalog (registries, artifacts)

-- ============================================================================================
-- 1. Cron and time zone checks. Each returns null when the value is acceptable, else the
-- reason; the triggers of section 2 and 4 raise it with the column named. The grammar is
-- croner's (the scheduler's parser): numbers or names (JAN, MON), a-b ranges, */n and a-b/n
-- steps, lists; ? in day of month and weekday; L, LW and nW in day of month; nL and n#k in
-- weekday (0 and 7 are Sunday). Never stricter than croner on what can fire.
-- ============================================================================================

create function ebb.cron_shape_error(expr text) returns text
language plpgsql immutable as $$
declare
  fields text[];
begin
  if expr is null or btrim(expr) = '' then
    return 'is empty';
  end if;
  if lower(btrim(expr)) in ('@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly') then
    return null;
  end if;
  fields := regexp_split_to_array(btrim(expr), '\s+');
  if array_length(fields, 1) not in (5, 6) then
    return format('must have 5 fields (minute hour day month weekday) or 6 (second first), got %s',
                  array_length(fields, 1));
  end if;
  for i in 1 .. array_length(fields, 1) loop
    if fields[i] !~ '^[0-9A-Za-z*?,/#-]+$' then
      return format('field %s (%s) has characters other than digits, letters and * ? , / - #', i, fields[i]);
    end if;
  end loop;
  return null;
end $$;
comment on function ebb.cron_shape_error(text) is
  'null when a cron expression has an acceptable shape (5 or 6 fields, or a nickname such as @daily), else the reason';

create function ebb.cron_value(token text, field_name text) returns integer
language sql immutable as $$
  select case
    when token ~ '^[0-9]{1,6}$' then token::integer
    when field_name = 'month' then array_position(
      array['JAN','FEB','MAR','APR','MAY','JUN','JUL','AUG','SEP','OCT','NOV','DEC'], upper(token))
    when field_name = 'weekday' then array_position(
      array['SUN','MON','TUE','WED','THU','FRI','SAT'], upper(token)) - 1
  end
$$;
comment on function ebb.cron_value(text, text) is
  'one value of a cron field as a number (digits, or a month/weekday name), null when neither';

create function ebb.cron_field_error(field text, field_name text, lo integer, hi integer, max_step integer)
returns text
language plpgsql immutable as $$
declare
  part text;
  m text[];
  a integer;
  b integer;
  step integer;
begin
  foreach part in array string_to_array(field, ',') loop
    if part = '' then
      return format('%s has an empty list item', quote_literal(field));
    end if;
    if part in ('*', '?') then
      continue;
    end if;
    if field_name = 'day of month' and upper(part) in ('L', 'LW') then
      continue;
    end if;
    if field_name = 'day of month' and part ~* '^[0-9]+W$' then
      a := ebb.cron_value(left(part, -1), field_name);
      if a is null or a < 1 or a > 31 then
        return format('%s is out of range 1-31', part);
      end if;
      continue;
    end if;
    if field_name = 'weekday' and part ~* '^[0-9A-Za-z]+(L|#[0-9]+|#L)$' then
      m := regexp_match(part, '^([0-9A-Za-z]+?)(L|#([0-9]+|L))$', 'i');
      a := ebb.cron_value(m[1], field_name);
      if a is null or a < 0 or a > 7 then
        return format('%s: %s is not a weekday (0-7 or SUN-SAT)', part, m[1]);
      end if;
      if m[3] is not null and upper(m[3]) <> 'L' and (m[3]::bigint < 1 or m[3]::bigint > 5) then
        return format('%s: the nth weekday must be 1-5 or L', part);
      end if;
      continue;
    end if;
    m := regexp_match(part, '^(\*|[0-9A-Za-z]+)(-([0-9A-Za-z]+))?(/([0-9]+))?$');
    if m is null then
      return format('%s is not a value, range or step', quote_literal(part));
    end if;
    if m[5] is not null then
      if length(m[5]) > 6 or m[5]::integer < 1 or m[5]::integer > max_step then
        return format('%s: step %s is out of range 1-%s', part, m[5], max_step);
      end if;
      if m[1] <> '*' and m[3] is null then
        return format('%s: a step needs * or a range before it (e.g. */%s)', part, m[5]);
      end if;
    end if;
    if m[1] = '*' then
      if m[3] is not null then
        return format('%s is not a value, range or step', quote_literal(part));
      end if;
      continue;
    end if;
    a := ebb.cron_value(m[1], field_name);
    if a is null or a < lo or a > hi then
      return format('%s is out of range %s-%s', m[1], lo, hi);
    end if;
    if m[3] is not null then
      b := ebb.cron_value(m[3], field_name);
      if b is null or b < lo or b > hi then
        return format('%s is out of range %s-%s', m[3], lo, hi);
      end if;
      if a > b then
        return format('%s: the range runs backwards', part);
      end if;
    end if;
  end loop;
  return null;
end $$;
comment on function ebb.cron_field_error(text, text, integer, integer, integer) is
  'null when a cron field is valid (values in lo..hi, steps up to max_step), else the reason';

create function ebb.cron_field_values(field text, field_name text, lo integer, hi integer) returns integer[]
language plpgsql immutable as $$
declare
  part text;
  m text[];
  a integer;
  b integer;
  out integer[] := '{}';
begin
  foreach part in array string_to_array(field, ',') loop
    m := regexp_match(part, '^(\*|[0-9A-Za-z]+)(-([0-9A-Za-z]+))?(/([0-9]+))?$');
    if m is null or (m[1] = '*' and m[5] is null) then
      return null;
    end if;
    a := case when m[1] = '*' then lo else ebb.cron_value(m[1], field_name) end;
    b := case when m[1] = '*' then hi when m[3] is not null then ebb.cron_value(m[3], field_name) else a end;
    if a is null or b is null then
      return null;
    end if;
    out := out || array(select generate_series(a, b, coalesce(m[5]::integer, 1)));
  end loop;
  return out;
end $$;
comment on function ebb.cron_field_values(text, text, integer, integer) is
  'the values a day-of-month or month field selects; null when it uses *, ?, L or W';

create function ebb.cron_range_error(expr text) returns text
language plpgsql immutable as $$
declare
  fields text[];
  names text[];
  lows integer[];
  highs integer[];
  steps integer[];
  problem text;
  days integer[];
  months integer[];
  month_days constant integer[] := array[31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
begin
  if ebb.cron_shape_error(expr) is not null or btrim(expr) like '@%' then
    return null;
  end if;
  fields := regexp_split_to_array(btrim(expr), '\s+');
  names := array['minute', 'hour', 'day of month', 'month', 'weekday'];
  lows := array[0, 0, 1, 1, 0];
  highs := array[59, 23, 31, 12, 7];
  steps := array[60, 24, 31, 12, 7];
  if array_length(fields, 1) = 6 then
    names := 'second'::text || names;
    lows := 0 || lows;
    highs := 59 || highs;
    steps := 60 || steps;
  end if;
  for i in 1 .. array_length(fields, 1) loop
    problem := ebb.cron_field_error(fields[i], names[i], lows[i], highs[i], steps[i]);
    if problem is not null then
      return format('%s (field %s): %s', names[i], i, problem);
    end if;
  end loop;
  -- With an unrestricted weekday a day is picked by day of month AND month: 31 February or
  -- 30-31 February never comes. (A restricted weekday fires on its weekdays anyway.)
  if fields[array_length(fields, 1)] in ('*', '?') then
    days := ebb.cron_field_values(fields[array_length(fields, 1) - 2], 'day of month', 1, 31);
    months := ebb.cron_field_values(fields[array_length(fields, 1) - 1], 'month', 1, 12);
    if months is null then
      months := array[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    end if;
    if days is not null and not exists (
      select 1 from unnest(months) mo where (select min(d) from unnest(days) d) <= month_days[mo]
    ) then
      return format('day of month %s never falls in month %s: the schedule would never fire',
                    fields[array_length(fields, 1) - 2], fields[array_length(fields, 1) - 1]);
    end if;
  end if;
  return null;
end $$;
comment on function ebb.cron_range_error(text) is
  'null when every field of a cron expression is in range and the schedule can fire (e.g. not 31 February), else the reason';

create function ebb.timezone_error(tz text) returns text
language plpgsql as $$
begin
  if tz is null or tz = '' then
    return 'is empty';
  end if;
  if exists (select 1 from ebb.known_timezones where name = tz) then
    return null;
  end if;
  if tz !~ '^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$'
     or not exists (select 1 from pg_catalog.pg_timezone_names where name = tz) then
    return format('%s is not an IANA time zone name known to PostgreSQL (e.g. UTC, Europe/Berlin)', tz);
  end if;
  insert into ebb.known_timezones (name) values (tz) on conflict do nothing;
  return null;
end $$;
comment on function ebb.timezone_error(text) is
  'null when the name is an IANA time zone known to PostgreSQL (remembered in ebb.known_timezones), else the reason';

-- Checked when a cron is written or changed only, so rows written before keep working.
-- Named to fire after the *_before_write triggers (same timing, alphabetical order), so a
-- shape error is reported first.
create function ebb.cron_ranges_before_write() returns trigger
language plpgsql as $$
declare
  problem text;
begin
  if new.cron is not null and (tg_op = 'INSERT' or new.cron is distinct from old.cron) then
    problem := ebb.cron_range_error(new.cron);
    if problem is not null then
      raise exception '%.cron: % (got %)', tg_table_name, problem, quote_literal(new.cron)
        using errcode = 'check_violation', column = 'cron';
    end if;
  end if;
  return new;
end $$;
comment on function ebb.cron_ranges_before_write() is
  'trigger: refuses a written or changed cron whose fields are out of range or that can never fire, naming table.cron';

create trigger schedules_cron_ranges before insert or update of cron on ebb.schedules
  for each row execute function ebb.cron_ranges_before_write();
create trigger policies_cron_ranges before insert or update of cron on ebb.policies
  for each row execute function ebb.cron_ranges_before_write();

-- ============================================================================================
-- 2. Schedules
-- ============================================================================================

-- Validation with messages naming the column, and reset of the bookkeeping when the timing
-- changes (so a change by plain SQL takes effect at the next tick).
create function ebb.schedules_before_write() returns trigger
language plpgsql as $$
declare
  problem text;
begin
  if not exists (select 1 from ebb.execution_kinds where name = new.kind) then
    raise exception 'schedules.kind: unknown kind % (known: %)', coalesce(quote_literal(new.kind), 'null'),
      (select string_agg(name, ', ' order by name) from ebb.execution_kinds)
      using errcode = 'foreign_key_violation', column = 'kind';
  end if;
  problem := ebb.cron_shape_error(new.cron);
  if problem is not null then
    raise exception 'schedules.cron: % (got %)', problem, coalesce(quote_literal(new.cron), 'null')
      using errcode = 'check_violation', column = 'cron';
  end if;
  if tg_op = 'INSERT' or new.timezone is distinct from old.timezone then
    problem := ebb.timezone_error(new.timezone);
    if problem is not null then
      raise exception 'schedules.timezone: %', problem using errcode = 'check_violation', column = 'timezone';
    end if;
  end if;
  if tg_op = 'UPDATE' and (new.cron, new.timezone, new.spread_seconds, new.enabled)
                      is distinct from (old.cron, old.timezone, old.spread_seconds, old.enabled) then
    new.next_slot := null;
    new.next_due_at := null;
    new.invalid_reason := null;
    new.updated_at := now();
  end if;
  return new;
end $$;
comment on function ebb.schedules_before_write() is
  'trigger: validates kind, cron and timezone naming the column; a timing change resets the scheduler''s bookkeeping';

create trigger schedules_before_write before insert or update on ebb.schedules
  for each row execute function ebb.schedules_before_write();

-- ============================================================================================
-- 3. Executions: start, plan, finish, stop.
--
-- Each step of a job's bookkeeping is ONE statement (one round trip, one commit). The worker
-- calls:
--   ebb.plan_task_batches(...)  the task batches of several executions and their jobs
--   ebb.finish_planning(...)    planning done (no tasks, or planning failed)
--   ebb.finish_task(...)        a task's final status, counts, details and log lines
--   ebb.finalize_execution(id)  end the execution when its last task has ended
-- Operators and scripts may call them too: ebb.trigger_execution starts a run,
-- ebb.plan_tasks plans one batch, and finalize_execution is a no-op unless the execution is
-- really done.
--
-- Task jobs are written into graphile-worker 0.17's private tables (_private_tasks,
-- _private_job_queues, _private_jobs) the way its add_jobs does, minus the NOTIFY that
-- add_jobs sends in the caller's transaction: PostgreSQL serialises the commits of every
-- transaction that sent a NOTIFY, so the worker sends one NOTIFY afterwards, outside any
-- writing transaction (src/executions/job_notifier.ts). In function bodies only:
-- graphile-worker's schema is created after ebb's migrations, and a body is resolved when it
-- runs.
--
-- Task jobs run in two lanes: a grouped task (e.g. one registry's deletions) runs in a named
-- queue per group slot ('ebb.execution.task', one job per fetch, so at most
-- taskGroupConcurrency tasks of a group run at once); a task without a group carries
-- 'ebb.execution.task.ungrouped' and runs, with the plan jobs, in a runner with a local queue
-- and batched completion (src/worker/runner.ts).
-- ============================================================================================

-- The execution row and its plan job (graphile-worker, schema ebb_worker) are written in the
-- caller's transaction. An unknown kind is refused by the foreign key to ebb.execution_kinds.
--   select ebb.trigger_execution('retention', <policy id>);            -- real run
--   select ebb.trigger_execution('retention', <policy id>, true);      -- dry run
--   select ebb.trigger_execution('sync', <registry id>);
create function ebb.trigger_execution(
  kind      text,
  target_id bigint,
  dry_run   boolean default false,
  trigger   text default 'manual'
) returns bigint
language plpgsql
as $$
declare
  execution_id bigint;
  job_id       bigint;
begin
  if target_id is null or target_id <= 0 then
    raise exception 'trigger_execution.target_id: must be a positive whole number (got %)', target_id
      using errcode = '22023';
  end if;
  insert into ebb.executions (kind, target_id, trigger, dry_run)
  values (trigger_execution.kind, trigger_execution.target_id, trigger_execution.trigger,
          coalesce(trigger_execution.dry_run, false))
  returning id into execution_id;
  -- 'ebb.execution.plan' with max_attempts 5: the same job src/executions/jobs.ts enqueues
  select (ebb_worker.add_job('ebb.execution.plan', json_build_object('executionId', execution_id),
                             max_attempts => 5)).id
    into job_id;
  update ebb.executions set plan_job_id = job_id, enqueued = true where id = execution_id;
  return execution_id;
end;
$$;
comment on function ebb.trigger_execution(text, bigint, boolean, text) is
  'start an execution now (manual trigger): inserts the execution and its plan job, returns the execution id';

-- p_batches: a JSON array of {execution_id, keys: [text], groups: [text|null],
-- payloads: [object|null], max_attempts, group_slots, last}; an execution at most once.
-- Execution by execution:
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
create function ebb.plan_task_batches(p_batches jsonb)
returns table (execution_id bigint, created integer)
language plpgsql
as $$
#variable_conflict use_column
declare
  -- the batches as arrays in execution id order: the statements below reach executions by
  -- primary key through them (joined to the jsonb itself, the planner misestimates the
  -- row count and scans the whole executions table)
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
  'create the task batches of several executions and their graphile-worker jobs in one set-based call; one row per batch: tasks created, or -1 when the execution must stop';

-- One execution's batch, for operators and scripts: the same rules as plan_task_batches (it
-- hands the batch to it).
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
begin
  if not exists (select 1 from ebb.executions e where e.id = p_execution_id) then
    raise exception 'plan_tasks.p_execution_id: no execution %', p_execution_id using errcode = '22023';
  end if;
  return (
    select b.created
      from ebb.plan_task_batches(jsonb_build_array(jsonb_build_object(
             'execution_id', p_execution_id,
             'keys', coalesce(to_jsonb(p_keys), '[]'::jsonb),
             'groups', coalesce(to_jsonb(p_groups), '[]'::jsonb),
             'payloads', coalesce(to_jsonb(p_payloads), '[]'::jsonb),
             'max_attempts', p_max_attempts,
             'group_slots', p_group_slots,
             'last', p_last))) as b);
end;
$$;
comment on function ebb.plan_tasks(bigint, text[], text[], jsonb[], integer, integer, boolean) is
  'create one batch of an execution''s tasks and their jobs (p_last: planning done); returns the tasks created, or -1 when the execution must stop';

-- Planning done without a last batch to carry it: the kind planned no task at all, or the
-- planning failed for good (p_error: the execution then ends as error).
create function ebb.finish_planning(p_execution_id bigint, p_error text default null) returns text
language plpgsql
as $$
begin
  update ebb.executions set planned = true, error = coalesce(p_error, error) where id = p_execution_id;
  return ebb.finalize_execution(p_execution_id);
end;
$$;
comment on function ebb.finish_planning(bigint, text) is
  'mark an execution''s planning done (p_error: it failed) and end it if no task is open; returns the new status or null';

-- A task's end: status, error, counts, details and its last log lines in one call, then the
-- execution's end if it was the last task. Guarded by the attempt number: a late finisher of
-- an attempt that crash recovery already replaced changes nothing (but still lets the
-- execution end).
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
comment on function ebb.finish_task(bigint, integer, text, text, integer, integer, integer, integer, jsonb, timestamp with time zone[], text[], text[]) is
  'end a task attempt (status, counts, details, log lines) and the execution if it was the last task; returns the execution''s new status or null';

-- End an execution when it is planned and none of its tasks is open. Whoever ends a task (or
-- the planning) writes its own row FIRST, then calls this in the same transaction. The
-- advisory lock (3772, id) - src/db/advisory_locks.ts - serialises only the finishers of ONE
-- execution, until their commit: the second one in sees the first one's commit (a new
-- snapshot per statement), so the last finisher always finalizes and none is missed. Tasks
-- never update the execution row while they run: no row-lock pile-up.
-- Status (Harbor's aggregation): any task error or a planning error -> error; else a stop
-- request or a stopped task -> stopped; else success.
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
  'end the execution if it is planned and all its tasks ended; returns the new status or null (safe to call by hand)';

-- overlap = 'queue': when an execution of the schedule ends, the oldest one waiting behind it
-- gets its plan job (same transaction as the end of the previous one).
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
comment on function ebb.release_queued(bigint) is
  'give the oldest execution queued behind a schedule''s ended one its plan job; returns its id or null';

-- Status only moves forward: pending -> running -> success|error|stopped (or pending ->
-- terminal directly). A terminal status never changes. Guards every writer, SQL included.
create function ebb.status_is_monotonic() returns trigger
language plpgsql as $$
begin
  if new.status is distinct from old.status and (
       old.status in ('success', 'error', 'stopped')
    or (old.status = 'running' and new.status = 'pending')) then
    raise exception '%.status: cannot go from % to % (id %)', tg_table_name, old.status, new.status, old.id
      using errcode = 'check_violation', column = 'status';
  end if;
  return new;
end $$;
comment on function ebb.status_is_monotonic() is
  'trigger: refuses a status going backwards or leaving a terminal status (executions, tasks)';

create trigger executions_status_monotonic before update of status on ebb.executions
  for each row execute function ebb.status_is_monotonic();
create trigger tasks_status_monotonic before update of status on ebb.tasks
  for each row execute function ebb.status_is_monotonic();

-- A stop request (ebb stop, or plain UPDATE ... SET stop_requested = true): a queued
-- execution (overlap = queue, no job yet) ends at once; tasks that have not started stop at
-- once; workers running its tasks hear NOTIFY "ebb:stop" (payload: the execution id) before
-- their next registry call.
create function ebb.executions_before_stop() returns trigger
language plpgsql as $$
begin
  if new.status = 'pending' and not new.enqueued then
    new.status := 'stopped';
    new.ended_at := now();
    new.planned := true;
  end if;
  return new;
end $$;
comment on function ebb.executions_before_stop() is
  'trigger: a stop request ends a queued execution (overlap = queue, no plan job yet) at once';

create function ebb.executions_after_stop() returns trigger
language plpgsql as $$
begin
  update ebb.tasks set status = 'stopped', ended_at = now(), error = 'stop requested before start'
   where execution_id = new.id and status = 'pending';
  return null;
end $$;
comment on function ebb.executions_after_stop() is
  'trigger: a stop request stops the execution''s tasks that have not started';

create function ebb.executions_notify_stop() returns trigger
language plpgsql
as $$
begin
  perform pg_notify('ebb:stop', new.id::text);
  return null;
end
$$;
comment on function ebb.executions_notify_stop() is
  'trigger: a stop request sends NOTIFY "ebb:stop" with the execution id, heard by the workers running its tasks';

create trigger executions_before_stop before update of stop_requested on ebb.executions
  for each row when (new.stop_requested and not old.stop_requested)
  execute function ebb.executions_before_stop();

create trigger executions_after_stop after update of stop_requested on ebb.executions
  for each row when (new.stop_requested and not old.stop_requested)
  execute function ebb.executions_after_stop();

create trigger executions_notify_stop after update of stop_requested on ebb.executions
  for each row when (new.stop_requested and not old.stop_requested)
  execute function ebb.executions_notify_stop();

-- ============================================================================================
-- 4. Retention policies: validation helpers (each returns null, or "<sub-path>: <message>"),
-- the triggers that validate policies and rules with the field named, and the policy's
-- schedule row.
-- ============================================================================================

create function ebb.retention_pattern_error(sel jsonb, allowed text[], needs_decoration boolean) returns text
language plpgsql immutable as $$
declare
  k text;
begin
  if jsonb_typeof(sel) is distinct from 'object' then
    return ': must be an object';
  end if;
  for k in select jsonb_object_keys(sel) loop
    if not k = any (allowed) then
      return format(': unknown field "%s"', k);
    end if;
  end loop;
  if sel ? 'kind' and (jsonb_typeof(sel -> 'kind') <> 'string' or sel ->> 'kind' not in ('glob', 'regex')) then
    return '.kind: must be "glob" or "regex"';
  end if;
  if needs_decoration then
    if not sel ? 'decoration' then
      return '.decoration: is required';
    end if;
    if jsonb_typeof(sel -> 'decoration') <> 'string' or sel ->> 'decoration' not in ('matches', 'excludes') then
      return '.decoration: must be "matches" or "excludes"';
    end if;
  end if;
  if not sel ? 'pattern' then
    return '.pattern: is required';
  end if;
  if jsonb_typeof(sel -> 'pattern') <> 'string' then
    return '.pattern: must be a string';
  end if;
  if sel ->> 'pattern' = '' then
    return '.pattern: must not be empty';
  end if;
  if length(sel ->> 'pattern') > 256 then
    return '.pattern: is longer than 256 characters';
  end if;
  if sel ? 'untagged' and jsonb_typeof(sel -> 'untagged') <> 'boolean' then
    return '.untagged: must be true or false';
  end if;
  return null;
end $$;
comment on function ebb.retention_pattern_error(jsonb, text[], boolean) is
  'null when a selector object has only allowed fields and a valid kind, decoration and pattern, else "<sub-path>: <message>"';

create function ebb.retention_patterns_error(arr jsonb, allowed text[], needs_decoration boolean) returns text
language plpgsql immutable as $$
declare
  problem text;
begin
  if jsonb_typeof(arr) is distinct from 'array' then
    return ': must be an array';
  end if;
  for i in 0 .. jsonb_array_length(arr) - 1 loop
    problem := ebb.retention_pattern_error(arr -> i, allowed, needs_decoration);
    if problem is not null then
      return format('[%s]%s', i, problem);
    end if;
  end loop;
  return null;
end $$;
comment on function ebb.retention_patterns_error(jsonb, text[], boolean) is
  'null when every selector of an array is valid, else "[i]<sub-path>: <message>"';

-- Harbor's bounds: counts 0 <= k < 32767, days 0 <= N <= 20190904.
create function ebb.retention_count_error(v jsonb, max_value numeric) returns text
language plpgsql immutable as $$
declare
  n numeric;
begin
  if v is null then
    return 'is required';
  end if;
  if jsonb_typeof(v) <> 'number' then
    return 'must be a number';
  end if;
  n := (v #>> '{}')::numeric;
  if n <> trunc(n) then
    return 'must be an integer';
  end if;
  if n < 0 then
    return 'is less than zero';
  end if;
  if n > max_value then
    return 'is too large';
  end if;
  return null;
end $$;
comment on function ebb.retention_count_error(jsonb, numeric) is
  'null when a rule parameter is a whole number in 0..max_value, else the reason';

create function ebb.policies_before_write() returns trigger
language plpgsql as $$
declare
  problem text;
  k text;
begin
  if new.name is null or btrim(new.name) = '' then
    raise exception 'policies.name: must not be empty' using errcode = 'check_violation', column = 'name';
  end if;
  if length(new.name) > 200 then
    raise exception 'policies.name: is too long (at most 200 characters)' using errcode = 'check_violation', column = 'name';
  end if;
  if jsonb_typeof(new.scope) is distinct from 'object' then
    raise exception 'policies.scope: must be an object {"projects": [...], "repositories": [...]}'
      using errcode = 'check_violation', column = 'scope';
  end if;
  for k in select jsonb_object_keys(new.scope) loop
    if k not in ('projects', 'repositories') then
      raise exception 'policies.scope: unknown field "%"', k using errcode = 'check_violation', column = 'scope';
    end if;
  end loop;
  if new.scope ? 'projects' then
    problem := ebb.retention_patterns_error(new.scope -> 'projects', array['kind', 'pattern'], false);
    if problem is not null then
      raise exception 'policies.scope.projects%', problem using errcode = 'check_violation', column = 'scope';
    end if;
  end if;
  if new.scope ? 'repositories' then
    problem := ebb.retention_patterns_error(new.scope -> 'repositories', array['kind', 'decoration', 'pattern'], true);
    if problem is not null then
      raise exception 'policies.scope.repositories%', problem using errcode = 'check_violation', column = 'scope';
    end if;
  end if;
  if jsonb_typeof(new.protected) is distinct from 'array' then
    raise exception 'policies.protected: must be an array' using errcode = 'check_violation', column = 'protected';
  end if;
  for i in 0 .. jsonb_array_length(new.protected) - 1 loop
    if jsonb_typeof(new.protected -> i) <> 'object' then
      raise exception 'policies.protected[%]: must be an object {"tag": {...}, "repository_selectors": [...]}', i
        using errcode = 'check_violation', column = 'protected';
    end if;
    for k in select jsonb_object_keys(new.protected -> i) loop
      if k not in ('tag', 'repository_selectors') then
        raise exception 'policies.protected[%]: unknown field "%"', i, k using errcode = 'check_violation', column = 'protected';
      end if;
    end loop;
    if not (new.protected -> i) ? 'tag' then
      raise exception 'policies.protected[%].tag: is required', i using errcode = 'check_violation', column = 'protected';
    end if;
    problem := ebb.retention_pattern_error(new.protected -> i -> 'tag', array['kind', 'pattern'], false);
    if problem is not null then
      raise exception 'policies.protected[%].tag%', i, problem using errcode = 'check_violation', column = 'protected';
    end if;
    if (new.protected -> i) ? 'repository_selectors' then
      problem := ebb.retention_patterns_error(new.protected -> i -> 'repository_selectors', array['kind', 'decoration', 'pattern'], true);
      if problem is not null then
        raise exception 'policies.protected[%].repository_selectors%', i, problem using errcode = 'check_violation', column = 'protected';
      end if;
    end if;
  end loop;
  if new.max_deletions is not null then
    if new.max_deletions <> trunc(new.max_deletions) then
      raise exception 'policies.max_deletions: must be an integer (got %)', new.max_deletions using errcode = 'check_violation', column = 'max_deletions';
    end if;
    if new.max_deletions < 0 then
      raise exception 'policies.max_deletions: is less than zero' using errcode = 'check_violation', column = 'max_deletions';
    end if;
    if new.max_deletions > 9007199254740991 then
      raise exception 'policies.max_deletions: is too large' using errcode = 'check_violation', column = 'max_deletions';
    end if;
  end if;
  if new.max_fraction is not null then
    if new.max_fraction < 0 then
      raise exception 'policies.max_fraction: is less than zero' using errcode = 'check_violation', column = 'max_fraction';
    end if;
    if new.max_fraction > 1 then
      raise exception 'policies.max_fraction: is greater than 1' using errcode = 'check_violation', column = 'max_fraction';
    end if;
  end if;
  if new.cron is not null then
    problem := ebb.cron_shape_error(new.cron);
    if problem is not null then
      raise exception 'policies.cron: % (got %)', problem, quote_literal(new.cron) using errcode = 'check_violation', column = 'cron';
    end if;
  end if;
  if tg_op = 'INSERT' or new.timezone is distinct from old.timezone then
    problem := ebb.timezone_error(new.timezone);
    if problem is not null then
      raise exception 'policies.timezone: %', problem using errcode = 'check_violation', column = 'timezone';
    end if;
  end if;
  if tg_op = 'UPDATE' then
    new.updated_at := now();
  end if;
  return new;
end $$;
comment on function ebb.policies_before_write() is
  'trigger: validates a policy''s name, scope, protected tags, caps, cron and timezone, naming the field; stamps updated_at';

create trigger policies_before_write before insert or update on ebb.policies
  for each row execute function ebb.policies_before_write();

create function ebb.policies_dry_run_reads_check() returns trigger
language plpgsql
as $$
begin
  if new.dry_run_reads not in ('registry', 'catalog') then
    raise exception 'policies.dry_run_reads: must be registry or catalog (got %)', quote_literal(new.dry_run_reads)
      using errcode = 'check_violation', column = 'dry_run_reads';
  end if;
  return new;
end
$$;
comment on function ebb.policies_dry_run_reads_check() is
  'trigger: policies.dry_run_reads must be registry or catalog';

create trigger policies_dry_run_reads_check before insert or update of dry_run_reads on ebb.policies
  for each row execute function ebb.policies_dry_run_reads_check();

-- One schedule row per policy with a cron, in step with cron/timezone/enabled/dry_run.
create function ebb.policies_sync_schedule() returns trigger
language plpgsql as $$
begin
  if tg_op = 'DELETE' then
    delete from ebb.schedules where kind = 'retention' and target_id = old.id;
    return null;
  end if;
  if new.cron is null then
    delete from ebb.schedules where kind = 'retention' and target_id = new.id;
    return null;
  end if;
  -- schedules (kind, target_id) unique
  insert into ebb.schedules (kind, target_id, cron, timezone, enabled, dry_run)
  values ('retention', new.id, new.cron, new.timezone, new.enabled, new.dry_run)
  on conflict (kind, target_id) do update
     set cron = excluded.cron, timezone = excluded.timezone, enabled = excluded.enabled, dry_run = excluded.dry_run
   where (ebb.schedules.cron, ebb.schedules.timezone, ebb.schedules.enabled, ebb.schedules.dry_run)
         is distinct from (excluded.cron, excluded.timezone, excluded.enabled, excluded.dry_run);
  return null;
end $$;
comment on function ebb.policies_sync_schedule() is
  'trigger: keeps the policy''s ebb.schedules row (kind retention) in step with its cron, timezone, enabled and dry_run';

create trigger policies_sync_schedule after insert or update or delete on ebb.policies
  for each row execute function ebb.policies_sync_schedule();

create function ebb.policy_rules_before_write() returns trigger
language plpgsql as $$
declare
  problem text;
  k text;
  tmpl text := new.template::text;
  other smallint;
begin
  if new.position is null then
    -- policy_rules (policy_id, position) unique
    select coalesce(max(position) + 1, 0) into new.position from ebb.policy_rules where policy_id = new.policy_id;
    if new.position > 14 then
      raise exception 'policy_rules: policy % already has 15 rules, the most a policy can have', new.policy_id
        using errcode = 'check_violation', column = 'position';
    end if;
  end if;
  if new.position < 0 or new.position > 14 then
    raise exception 'policy_rules.position: must be between 0 and 14 (a policy has at most 15 rules), got %', new.position
      using errcode = 'check_violation', column = 'position';
  end if;
  if jsonb_typeof(new.params) is distinct from 'object' then
    raise exception 'policy_rules.params: must be an object' using errcode = 'check_violation', column = 'params';
  end if;
  for k in select jsonb_object_keys(new.params) loop
    if (tmpl = 'latestPerSemverLine' and k not in ('keep', 'line', 'include_prereleases'))
       or (tmpl <> 'latestPerSemverLine' and k <> tmpl) then
      raise exception 'policy_rules.params: unknown field "%" for template %', k, tmpl using errcode = 'check_violation', column = 'params';
    end if;
  end loop;
  if tmpl in ('latestPushedK', 'latestPulledN', 'latestActiveK') then
    problem := ebb.retention_count_error(new.params -> tmpl, 32766);
  elsif tmpl in ('nDaysSinceLastPush', 'nDaysSinceLastPull') then
    problem := ebb.retention_count_error(new.params -> tmpl, 20190904);
  elsif tmpl = 'latestPerSemverLine' then
    problem := ebb.retention_count_error(new.params -> 'keep', 32766);
    if problem is not null then
      tmpl := 'keep';
    elsif not new.params ? 'line' or new.params ->> 'line' not in ('major', 'minor') or jsonb_typeof(new.params -> 'line') <> 'string' then
      raise exception 'policy_rules.params.line: must be "major" or "minor"' using errcode = 'check_violation', column = 'params';
    elsif new.params ? 'include_prereleases' and jsonb_typeof(new.params -> 'include_prereleases') <> 'boolean' then
      raise exception 'policy_rules.params.include_prereleases: must be true or false' using errcode = 'check_violation', column = 'params';
    end if;
  end if;
  if problem is not null then
    raise exception 'policy_rules.params.%: %', tmpl, problem using errcode = 'check_violation', column = 'params';
  end if;
  problem := ebb.retention_patterns_error(new.tag_selectors, array['kind', 'decoration', 'pattern', 'untagged'], true);
  if problem is not null then
    raise exception 'policy_rules.tag_selectors%', problem using errcode = 'check_violation', column = 'tag_selectors';
  end if;
  problem := ebb.retention_patterns_error(new.repository_selectors, array['kind', 'decoration', 'pattern'], true);
  if problem is not null then
    raise exception 'policy_rules.repository_selectors%', problem using errcode = 'check_violation', column = 'repository_selectors';
  end if;
  -- policy_rules_duplicate_rule is the race-proof backstop; this says which rule it duplicates
  select position into other from ebb.policy_rules
   where policy_id = new.policy_id and template = new.template and params = new.params
     and tag_selectors = new.tag_selectors and repository_selectors = new.repository_selectors
     and id is distinct from new.id
   limit 1;
  if found then
    raise exception 'policy_rules: duplicates the rule at position % of policy %', other, new.policy_id
      using errcode = 'unique_violation';
  end if;
  return new;
end $$;
comment on function ebb.policy_rules_before_write() is
  'trigger: fills a rule''s position and validates it, its params and selectors, naming the field; refuses a duplicate rule';

create trigger policy_rules_before_write before insert or update on ebb.policy_rules
  for each row execute function ebb.policy_rules_before_write();

-- A rule change is a policy change.
create function ebb.policy_rules_touch_policy() returns trigger
language plpgsql as $$
begin
  update ebb.policies set updated_at = now() where id = coalesce(new.policy_id, old.policy_id);
  return null;
end $$;
comment on function ebb.policy_rules_touch_policy() is
  'trigger: a rule change stamps its policy''s updated_at';

create trigger policy_rules_touch_policy after insert or update or delete on ebb.policy_rules
  for each row execute function ebb.policy_rules_touch_policy();

-- ============================================================================================
-- 5. Catalog: registries and artifacts
-- ============================================================================================

create function ebb.registries_before_write() returns trigger
language plpgsql as $$
declare
  entry text;
begin
  if new.repositories is not null then
    if cardinality(new.repositories) = 0 then
      raise exception 'registries.repositories: empty list (null means: list repositories with /v2/_catalog)'
        using errcode = 'check_violation', column = 'repositories';
    end if;
    if cardinality(new.repositories) > 10000 then
      raise exception 'registries.repositories: % entries, at most 10000', cardinality(new.repositories)
        using errcode = 'check_violation', column = 'repositories';
    end if;
    foreach entry in array new.repositories loop
      if entry is null or entry = '' then
        raise exception 'registries.repositories: empty or null entry'
          using errcode = 'check_violation', column = 'repositories';
      end if;
      if length(entry) > 255 or entry !~ '^[a-z0-9._/*?{},!^\\[\]-]+$' then
        raise exception 'registries.repositories: % is not a repository name or pattern (lowercase names such as team/app, globs such as team/*)',
          quote_literal(left(entry, 300))
          using errcode = 'check_violation', column = 'repositories';
      end if;
    end loop;
  end if;
  return new;
end $$;
comment on function ebb.registries_before_write() is
  'trigger: validates registries.repositories (non-empty, at most 10000 names or patterns)';

create trigger registries_before_write before insert or update of repositories on ebb.registries
  for each row execute function ebb.registries_before_write();

-- A registry's sync schedule goes with the registry (schedules has no foreign key: its
-- target_id names a policy or a registry depending on the kind).
create function ebb.registries_after_delete() returns trigger
language plpgsql as $$
begin
  delete from ebb.schedules where kind = 'sync' and target_id = old.id;
  return null;
end $$;
comment on function ebb.registries_after_delete() is
  'trigger: deleting a registry deletes its sync schedule';

create trigger registries_after_delete after delete on ebb.registries
  for each row execute function ebb.registries_after_delete();

-- A row seeded by plain SQL (pushed_at_source = 'seed') declares its manifest data complete,
-- so it is inspected unless it says when.
create function ebb.artifacts_seed_inspected() returns trigger
language plpgsql
as $$
begin
  new.inspected_at := now();
  return new;
end
$$;
comment on function ebb.artifacts_seed_inspected() is
  'trigger: an artifact inserted with pushed_at_source = seed and no inspected_at counts as inspected now';

create trigger artifacts_seed_inspected
  before insert on ebb.artifacts
  for each row
  when (new.pushed_at_source = 'seed' and new.inspected_at is null)
  execute function ebb.artifacts_seed_inspected();
