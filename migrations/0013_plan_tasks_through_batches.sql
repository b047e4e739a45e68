-- ebb.plan_tasks (one execution's batch, for operators and scripts) planned by
-- ebb.plan_task_batches (migration 0010), which the worker uses for every batch since then.
--
-- Until now the same planning rules were written twice in SQL: plan_tasks (migration 0009)
-- and plan_task_batches, set-based. The worker no longer calls plan_tasks, so a rule changed
-- in one could silently differ in the other. Now there is one: plan_tasks keeps its
-- signature, its answer (tasks created, or -1 when the execution must stop) and its error for
-- an unknown execution, and hands the batch to plan_task_batches.
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
