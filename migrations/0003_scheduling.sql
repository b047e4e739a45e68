-- ebb scheduling: schedules, executions, tasks, task logs, worker heartbeats.
--
-- A schedule row says WHEN something runs (cron + IANA timezone); an execution is one run of
-- a kind (retention, sync, ...) for one target; its tasks are the units of work (one per
-- repository for retention), each a graphile-worker job. Users write schedules and read
-- history with plain SQL:
--   insert into ebb.schedules (kind, target_id, cron, timezone, spread_seconds)
--     values ('retention', 42, '0 0 0 * * *', 'Europe/Berlin', 3600);
--   update ebb.executions set stop_requested = true where id = 7;   -- honoured at checkpoints
--   select * from ebb.execution_summary order by id desc limit 20;
--   select * from ebb.schedules where invalid_reason is not null;   -- rows the scheduler refused

-- The kinds of work ebb knows. A foreign key (not a CHECK) so that a new kind is one INSERT.
create table ebb.execution_kinds (
  name text primary key check (name ~ '^[a-z][a-z0-9_]{0,62}$')
);
insert into ebb.execution_kinds (name) values ('retention'), ('sync');

-- Time zone names accepted so far. pg_timezone_names costs ~50 ms per lookup (it reads the
-- zone files), so a name is looked up once and remembered here.
create table ebb.known_timezones (
  name text primary key
);

-- Shape of a cron expression: 5 fields (minute first) or Harbor's 6 (seconds first), or a
-- nickname. Returns null when acceptable, else the reason. The scheduler parses it fully
-- with croner and stores croner's message in schedules.invalid_reason if it still fails.
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

create table ebb.schedules (
  id               bigint generated always as identity primary key,
  kind             text not null references ebb.execution_kinds (name),
  -- the policy id (retention) or registry id (sync); one schedule per (kind, target)
  target_id        bigint not null,
  cron             text not null,
  timezone         text not null default 'UTC',
  enabled          boolean not null default true,
  dry_run          boolean not null default false,
  -- after downtime: 'skip' missed slots, 'run_once' for all of them, or 'backfill' every
  -- missed slot newer than backfill_window (at most 100 per tick)
  misfire          text not null default 'run_once'
                   check (misfire in ('skip', 'run_once', 'backfill')),
  backfill_window  interval not null default interval '1 hour'
                   check (backfill_window > interval '0' and backfill_window <= interval '31 days'),
  -- while an execution of this schedule is pending/running: 'skip' the new slot, or 'queue'
  -- it (runs when the previous one ends; at most 10 waiting)
  overlap          text not null default 'skip' check (overlap in ('skip', 'queue')),
  -- fires of one cron slot are spread over this many seconds: offset = hash(id) mod spread
  spread_seconds   integer not null default 0 check (spread_seconds between 0 and 86400),
  -- set by the scheduler when croner refuses the row (message of the parser); cleared when
  -- cron or timezone change
  invalid_reason   text,
  -- bookkeeping of the scheduler (null next_due_at = to be computed at the next tick)
  next_slot        timestamptz,
  next_due_at      timestamptz,
  last_slot        timestamptz,
  last_fired_at    timestamptz,
  skipped_fires    bigint not null default 0,
  last_skip_reason text,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  unique (kind, target_id)
);

-- The tick reads due rows through this index: next_due_at <= now() or next_due_at is null.
create index schedules_due_idx on ebb.schedules (next_due_at nulls first)
  where enabled and invalid_reason is null;

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

create trigger schedules_before_write before insert or update on ebb.schedules
  for each row execute function ebb.schedules_before_write();

create table ebb.executions (
  id              bigint generated always as identity primary key,
  kind            text not null references ebb.execution_kinds (name),
  target_id       bigint not null,
  schedule_id     bigint references ebb.schedules (id) on delete set null,
  -- the nominal cron slot (without spread) for scheduled runs; the request time otherwise
  fire_time       timestamptz not null default now(),
  trigger         text not null check (trigger in ('schedule', 'manual', 'event')),
  status          text not null default 'pending'
                  check (status in ('pending', 'running', 'success', 'error', 'stopped')),
  dry_run         boolean not null default false,
  stop_requested  boolean not null default false,
  -- false while queued behind a running execution of the same schedule (overlap = queue)
  enqueued        boolean not null default true,
  plan_job_id     bigint,
  planned         boolean not null default false,
  created_at      timestamptz not null default now(),
  started_at      timestamptz,
  ended_at        timestamptz,
  error           text,
  -- aggregates of the tasks, written once when the execution ends (execution_summary is live)
  tasks_total     integer,
  tasks_failed    integer,
  total           bigint,
  retained        bigint,
  deleted         bigint,
  errors          bigint,
  -- exactly once per slot, whatever the number of scheduler processes
  unique (schedule_id, fire_time)
);

-- Overlap checks and the reconciler look at open executions only.
create index executions_open_idx on ebb.executions (schedule_id) where status in ('pending', 'running');
-- History per target, newest first (execution_summary, pruning).
create index executions_history_idx on ebb.executions (kind, target_id, id desc);

create table ebb.tasks (
  id            bigint generated always as identity primary key,
  execution_id  bigint not null references ebb.executions (id) on delete cascade,
  -- what the task works on, unique in its execution (e.g. the repository name)
  key           text not null,
  -- concurrency group (e.g. the registry): at most N tasks of one group run at once
  task_group    text,
  payload       jsonb not null default '{}',
  status        text not null default 'pending'
                check (status in ('pending', 'running', 'success', 'error', 'stopped')),
  attempts      integer not null default 0,
  job_id        bigint,
  created_at    timestamptz not null default now(),
  started_at    timestamptz,
  ended_at      timestamptz,
  error         text,
  total         integer not null default 0,
  retained      integer not null default 0,
  deleted       integer not null default 0,
  errors        integer not null default 0,
  details       jsonb,
  unique (execution_id, key)
);

-- "Is any task of this execution still open?" stays cheap for a 20,000-task execution: the
-- partial index holds open tasks only.
create index tasks_open_idx on ebb.tasks (execution_id) where status in ('pending', 'running');

create table ebb.task_logs (
  id       bigint generated always as identity primary key,
  task_id  bigint not null references ebb.tasks (id) on delete cascade,
  at       timestamptz not null default now(),
  level    text not null check (level in ('debug', 'info', 'warn', 'error')),
  message  text not null
);
create index task_logs_task_idx on ebb.task_logs (task_id, id);

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

create trigger executions_status_monotonic before update of status on ebb.executions
  for each row execute function ebb.status_is_monotonic();
create trigger tasks_status_monotonic before update of status on ebb.tasks
  for each row execute function ebb.status_is_monotonic();

-- A stop request (ebb stop, or plain UPDATE ... SET stop_requested = true) stops the tasks
-- that have not started yet at once; running ones stop at their next checkpoint.
create function ebb.executions_after_stop() returns trigger
language plpgsql as $$
begin
  update ebb.tasks set status = 'stopped', ended_at = now(), error = 'stop requested before start'
   where execution_id = new.id and status = 'pending';
  return null;
end $$;

-- A queued execution (overlap = queue, no job yet) that is asked to stop ends at once.
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

create trigger executions_before_stop before update of stop_requested on ebb.executions
  for each row when (new.stop_requested and not old.stop_requested)
  execute function ebb.executions_before_stop();

create trigger executions_after_stop after update of stop_requested on ebb.executions
  for each row when (new.stop_requested and not old.stop_requested)
  execute function ebb.executions_after_stop();

-- One row per graphile-worker pool (one per worker process), refreshed every few seconds.
-- A pool silent for longer than the dead-worker timeout is declared dead: its jobs are
-- unlocked (force_unlock_workers) and run again elsewhere.
create table ebb.worker_heartbeats (
  pool_id       text primary key,
  hostname      text not null,
  pid           integer not null,
  started_at    timestamptz not null default now(),
  last_seen_at  timestamptz not null default now()
);

-- Executions with live task counts (running ones too). Stuck "running" is visible as
-- running with open_tasks = 0.
create view ebb.execution_summary as
select e.id, e.kind, e.target_id, e.schedule_id, e.trigger, e.status, e.dry_run, e.stop_requested,
       e.fire_time, e.started_at, e.ended_at, e.ended_at - e.started_at as duration, e.error,
       coalesce(t.tasks, 0) as tasks,
       coalesce(t.open_tasks, 0) as open_tasks,
       coalesce(t.succeeded, 0) as tasks_succeeded,
       coalesce(t.failed, 0) as tasks_failed,
       coalesce(t.stopped, 0) as tasks_stopped,
       coalesce(t.total, 0) as total,
       coalesce(t.retained, 0) as retained,
       coalesce(t.deleted, 0) as deleted,
       coalesce(t.errors, 0) as errors
  from ebb.executions e
  left join lateral (
    select count(*) as tasks,
           count(*) filter (where status in ('pending', 'running')) as open_tasks,
           count(*) filter (where status = 'success') as succeeded,
           count(*) filter (where status = 'error') as failed,
           count(*) filter (where status = 'stopped') as stopped,
           sum(total) as total, sum(retained) as retained, sum(deleted) as deleted, sum(errors) as errors
      from ebb.tasks where tasks.execution_id = e.id   -- tasks (execution_id, key) unique index
  ) t on true;
