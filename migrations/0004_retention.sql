-- ebb retention: policies and their rules (written by users with plain SQL, validated by
-- PostgreSQL itself with messages naming the field), the policy snapshot of each execution,
-- and one decision row per artifact per execution (the audit: what was deleted, and why).
--
-- A POLICY BY PLAIN SQL (the same model as `ebb policy create`, see src/retention/policy_schema.ts):
--
--   insert into ebb.policies (name, registry_id, scope, deletion_unit, max_deletions, max_fraction,
--                             protected, cron, timezone, dry_run)
--   values ('keep-recent', (select id from ebb.registries where name = 'local'),
--           '{"projects": [{"kind": "glob", "pattern": "team"}],
--             "repositories": [{"kind": "glob", "decoration": "excludes", "pattern": "legacy/**"}]}',
--           'artifact', 500, 0.5,
--           '[{"tag": {"kind": "glob", "pattern": "release-*"}}]',
--           '0 0 3 * * *', 'Europe/Berlin', true)      -- dry_run first: look at ebb.decisions
--   returning id;
--
--   insert into ebb.policy_rules (policy_id, template, params, tag_selectors, repository_selectors)
--   values ($policy_id, 'latestPushedK', '{"latestPushedK": 10}',
--           '[{"kind": "glob", "decoration": "matches", "pattern": "**", "untagged": true}]',
--           '[{"kind": "glob", "decoration": "matches", "pattern": "**"}]'),
--          ($policy_id, 'nDaysSinceLastPull', '{"nDaysSinceLastPull": 30}',
--           '[{"decoration": "matches", "pattern": "v*"}]', '[]'),
--          ($policy_id, 'latestPerSemverLine', '{"keep": 3, "line": "minor"}', '[]', '[]');
--   -- position is 0..14 (at most 15 rules), the next free one when omitted
--
--   update ebb.policies set dry_run = false where name = 'keep-recent';  -- now it deletes
--   update ebb.policies set enabled = false where name = 'keep-recent';  -- no more scheduled runs
--
-- Refused rows name the field, e.g.
--   policy_rules.params.latestPushedK: is less than zero
--   policy_rules.tag_selectors[0].pattern: must not be empty
--   policy_rules.template: invalid input value for enum ebb.policy_rules_template: "latestPushed"
--   policies.max_fraction: is greater than 1
-- Patterns are checked for shape here; glob syntax and the regex safety guard are checked by
-- ebb when it loads the policy (`ebb policy show NAME` reports them; an execution of an invalid
-- policy fails at planning with the same message and deletes nothing).
--
-- SCHEDULE: a policy with a cron has exactly one ebb.schedules row (kind 'retention',
-- target_id = policy id), kept in step with the policy's cron, timezone, enabled and dry_run by
-- a trigger (cron null = manual runs only: no schedule row). Spread, misfire and overlap are
-- tuned on that schedule row itself and are left alone by the trigger.
--
-- AUDIT:
--   select digest, tags, reason, outcome, error from ebb.decisions
--    where execution_id = $1 and action = 'delete' order by repository, digest;
--   select * from ebb.decisions where repository_id = $2 and digest = $3 order by id desc;

create type ebb.policies_deletion_unit as enum ('artifact', 'untag');

create type ebb.policy_rules_template as enum (
  'latestPushedK', 'latestPulledN', 'nDaysSinceLastPush', 'nDaysSinceLastPull', 'always',
  'latestActiveK', 'latestPerSemverLine');

create table ebb.policies (
  id             bigint generated always as identity primary key,
  name           text not null unique,
  -- deleting a registry that policies point at is refused: delete the policies first
  registry_id    bigint not null references ebb.registries (id) on delete restrict,
  -- {"projects": [pattern], "repositories": [repository selector]} (policy_schema.ts scope)
  scope          jsonb not null default '{}',
  deletion_unit  ebb.policies_deletion_unit not null default 'artifact',
  -- per-repository caps: a plan deleting more aborts that repository's task, deleting nothing
  max_deletions  numeric,
  max_fraction   numeric,
  -- [{"tag": pattern, "repository_selectors": [...]}]: tags that always survive
  protected      jsonb not null default '[]',
  -- null: manual runs only
  cron           text,
  timezone       text not null default 'UTC',
  enabled        boolean not null default true,
  dry_run        boolean not null default false,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now()
);
create index policies_registry_idx on ebb.policies (registry_id);

create table ebb.policy_rules (
  id                    bigint generated always as identity primary key,
  policy_id             bigint not null references ebb.policies (id) on delete cascade,
  -- 0..14: a policy has at most 15 rules (Harbor); filled with the next free one when null
  position              smallint not null,
  template              ebb.policy_rules_template not null,
  -- key = template id, e.g. {"latestPushedK": 10}; {} for always
  params                jsonb not null default '{}',
  tag_selectors         jsonb not null default '[]',
  repository_selectors  jsonb not null default '[]',
  disabled              boolean not null default false,
  created_at            timestamptz not null default now(),
  unique (policy_id, position)
);
-- Two identical rules (disabled apart) conflict, as in Harbor. jsonb equality ignores key order.
create unique index policy_rules_duplicate_rule
  on ebb.policy_rules (policy_id, template, params, tag_selectors, repository_selectors);

-- ---- validation helpers: each returns null, or "<sub-path>: <message>" ----

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

create trigger policies_before_write before insert or update on ebb.policies
  for each row execute function ebb.policies_before_write();

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

create trigger policy_rules_before_write before insert or update on ebb.policy_rules
  for each row execute function ebb.policy_rules_before_write();

-- A rule change is a policy change.
create function ebb.policy_rules_touch_policy() returns trigger
language plpgsql as $$
begin
  update ebb.policies set updated_at = now() where id = coalesce(new.policy_id, old.policy_id);
  return null;
end $$;

create trigger policy_rules_touch_policy after insert or update or delete on ebb.policy_rules
  for each row execute function ebb.policy_rules_touch_policy();

-- The policy exactly as one retention execution evaluated it (written once when the execution
-- is planned): every task of the execution decides with the same rules even if the policy is
-- edited meanwhile, and the audit shows what was applied.
create table ebb.retention_runs (
  execution_id    bigint primary key references ebb.executions (id) on delete cascade,
  policy_id       bigint not null,
  policy_name     text not null,
  registry_id     bigint not null,
  -- ebb's policy JSON (policy_schema.ts), rules in position order
  policy          jsonb not null,
  -- policy_rules.position of policy.rules[i] (decisions.rule holds the position)
  rule_positions  smallint[] not null,
  -- the execution's dry_run OR the policy's dry_run
  dry_run         boolean not null,
  -- "now" of every decision of the execution (the cron slot, or the request time)
  evaluated_at    timestamptz not null,
  created_at      timestamptz not null default now()
);

-- One row per artifact per execution: what was decided, why, and what the registry said.
create table ebb.decisions (
  id              bigint generated always as identity primary key,
  execution_id    bigint not null references ebb.executions (id) on delete cascade,
  task_id         bigint not null references ebb.tasks (id) on delete cascade,
  -- no foreign key: the audit outlives the catalog rows of deleted artifacts
  repository_id   bigint not null,
  repository      text not null,
  digest          text not null,
  tags            text[] not null default '{}',
  media_type      text,
  -- retain | protected | delete | untag | error; only delete and untag call the registry
  action          text not null check (action in ('retain', 'protected', 'delete', 'untag', 'error')),
  -- set when a cap aborted the repository: what would have happened
  planned_action  text check (planned_action in ('delete', 'untag')),
  untag_tags      text[],
  reason          text not null,
  -- policy_rules.position of the rule that retained it (lowest wins)
  rule            smallint,
  role            text not null check (role in ('candidate', 'index_child', 'referrer')),
  -- effective times: max over the artifact and its tags
  pushed_at       timestamptz,
  pulled_at       timestamptz,
  -- none: nothing to do | dry_run: would have acted | pending: to do | deleted | already_deleted
  -- (the registry answered 404) | failed (see error) | unsupported (untag of some tags only:
  -- the distribution API cannot remove one tag of a manifest)
  outcome         text not null check (outcome in ('none', 'dry_run', 'pending', 'deleted', 'already_deleted', 'failed', 'unsupported')),
  error           text,
  decided_at      timestamptz not null default now(),
  acted_at        timestamptz,
  -- one decision per artifact per execution: a task re-run after a crash finds its rows
  unique (execution_id, repository_id, digest)
);
-- "what did execution X delete (or fail to delete) and why"
create index decisions_execution_action_idx on ebb.decisions (execution_id, action, outcome);
-- the work list of a task: its pending registry calls
create index decisions_task_pending_idx on ebb.decisions (task_id) where outcome = 'pending';
-- "what happened to this digest over time"
create index decisions_artifact_idx on ebb.decisions (repository_id, digest);
