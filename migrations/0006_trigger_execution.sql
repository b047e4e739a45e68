-- Start an execution by plain SQL, the same way `ebb run` and the JSON API do:
--   select ebb.trigger_execution('retention', <policy id>);            -- real run
--   select ebb.trigger_execution('retention', <policy id>, true);      -- dry run
--   select ebb.trigger_execution('sync', <registry id>);
-- The execution row and its plan job (graphile-worker, schema ebb_worker) are written in
-- the caller's transaction; the function returns the execution id. An unknown kind is
-- refused by the foreign key to ebb.execution_kinds.
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
