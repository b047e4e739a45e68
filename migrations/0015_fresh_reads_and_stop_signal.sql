-- Retention decides on what the registry holds now, and a stop reaches running tasks at once.
--
-- 1. ebb.policies.dry_run_reads: where a DRY RUN reads the repository from. 'registry' (the
--    default): the same fresh read of the registry as a run that deletes, so the report is what
--    a real run would do now. 'catalog': the catalog as it is (no registry call; its age is
--    shown in the task's log and details; a STALE repository or manifests known only from push
--    events refuse the repository). A run that deletes always reads the registry.
--    ebb.retention_runs.dry_run_reads: the policy's value when the execution was planned.
-- 2. ebb.decisions.outcome 'skipped': a deletion not made because the repository changed
--    between the decision and the deletion (the tag re-check right before the deletion phase);
--    the reason is in decisions.error.
-- 3. NOTIFY "ebb:stop" (payload: the execution id) when a stop is requested, so the workers
--    running its tasks hear it before their next registry call instead of at their next poll.

alter table ebb.policies add column dry_run_reads text not null default 'registry';

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

create trigger policies_dry_run_reads_check before insert or update of dry_run_reads on ebb.policies
  for each row execute function ebb.policies_dry_run_reads_check();

alter table ebb.retention_runs add column dry_run_reads text not null default 'registry'
  check (dry_run_reads in ('registry', 'catalog'));

-- Every existing row satisfies the narrower check it replaces, so it is not re-validated
-- (NOT VALID: a scan of the whole decision history would hold the migration for nothing).
alter table ebb.decisions drop constraint decisions_outcome_check;
alter table ebb.decisions add constraint decisions_outcome_check
  check (outcome in ('none', 'dry_run', 'pending', 'deleted', 'already_deleted', 'failed', 'unsupported', 'skipped')) not valid;

create function ebb.executions_notify_stop() returns trigger
language plpgsql
as $$
begin
  perform pg_notify('ebb:stop', new.id::text);
  return null;
end
$$;

create trigger executions_notify_stop after update of stop_requested on ebb.executions
  for each row when (new.stop_requested and not old.stop_requested)
  execute function ebb.executions_notify_stop();
