-- Registries without a catalog, and scheduled syncs.
--
-- registries.repositories: the repositories a sync reads when the registry does not serve
-- /v2/_catalog to ebb's account (GHCR, Docker Hub, Quay and others). Each entry is a
-- repository name (read as is) or a doublestar pattern (matched against the repositories
-- the catalog already knows, e.g. learnt from push notifications). null = list them with
-- /v2/_catalog.
--   update ebb.registries set repositories = '{team/app,team/tools/*}' where name = 'ghcr';
--
-- Scheduled syncs are ebb.schedules rows of kind 'sync' whose target_id is the registry id
-- (same scheduler, cron, spread, misfire and overlap rules as retention schedules):
--   insert into ebb.schedules (kind, target_id, cron, timezone, spread_seconds)
--   select 'sync', id, '0 */6 * * *', 'UTC', 600 from ebb.registries where name = 'local';
-- ebb.sync_schedules shows them by registry name; deleting a registry deletes its schedule.

alter table ebb.registries add column repositories text[];

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

create trigger registries_after_delete after delete on ebb.registries
  for each row execute function ebb.registries_after_delete();

-- Sync schedules by registry name.
create view ebb.sync_schedules as
select r.name as registry, s.id as schedule_id, s.cron, s.timezone, s.enabled, s.spread_seconds,
       s.misfire, s.overlap, s.next_due_at, s.last_fired_at, s.invalid_reason
  from ebb.schedules s
  join ebb.registries r on r.id = s.target_id
 where s.kind = 'sync';
