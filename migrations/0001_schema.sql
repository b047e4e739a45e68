-- ebb's schema as of the first release: every table, constraint, index, view and seed row.
-- The SQL functions (and the triggers that call them) are in 0002_functions.sql.
--
-- This file and 0002 are the baseline: they are never edited once released (the migrator
-- checks each file's sha256). Every later schema change is a new file, 0003_... onwards
-- (see migrations/README.md). The SQL API is listed in docs/sql.md.
--
-- graphile-worker's own tables live in schema ebb_worker, installed by `ebb migrate`.
-- The ledger ebb.schema_migrations is created by the migrator itself, under its lock.
--
-- Sections: 1. catalog (what a registry holds)  2. scheduling (schedules, executions, tasks)
--           3. retention (policies, rules, runs, decisions)  4. views

create schema if not exists ebb;

comment on schema ebb is
  'ebb: policies, schedules, executions, tasks, decisions and the registry catalog';

-- ============================================================================================
-- 1. Catalog: what a registry holds, as last read by sync or reported by notifications.
--
-- SEEDING CONTRACT (tests and benchmarks fill the catalog with plain SQL; so may operators):
--   1. insert into ebb.registries (name, base_url) values ('local', 'http://127.0.0.1:5000')
--        returning id;                       -- auth_kind defaults to 'anonymous'
--   2. insert into ebb.repositories (registry_id, name) values ($registry_id, 'team/app')
--        returning id;                       -- name without registry host, OCI grammar
--   3. insert into ebb.artifacts (repository_id, digest, media_type, size, pushed_at,
--        pushed_at_source, pulled_at, created_at)
--        select $repo_id, 'sha256:' || encode(sha256(i::text::bytea), 'hex'),
--               'application/vnd.oci.image.manifest.v1+json', 1234,
--               now() - i * interval '1 hour', 'seed', null, null
--        from generate_series(1, 1000000) i;
--      digest is the manifest digest (algorithm:hex). pushed_at is required (when the
--      manifest arrived: the push event's time, or the first sync that saw it);
--      pushed_at_source says which ('event' | 'sync' | 'seed'). pulled_at null = never
--      pulled. created_at is the image config's `created`, null when unknown or not an image.
--      A row with pushed_at_source = 'seed' declares its media_type, artifact_type,
--      created_at and references complete: it is inspected (inspected_at set by a trigger
--      when left null). Other rows without inspected_at stay uninspected, and retention
--      refuses their repository until a sync has read them.
--   4. insert into ebb.tags (repository_id, name, digest, pushed_at, pulled_at)
--        values ($repo_id, 'v1', $digest, now(), null);
--      the (repository_id, digest) artifact must exist (foreign key); a tag names one
--      artifact; pushed_at null = unknown (sync cannot know when a tag was pushed).
--   5. insert into ebb.artifact_references (repository_id, digest, kind, ref_digest, platform)
--        values ($repo_id, $index_digest, 'index_child', $child_digest, 'linux/arm64/v8'),
--               ($repo_id, $signature_digest, 'subject', $image_digest, null);
--      `digest` is the artifact whose manifest declares the edge (must exist); ref_digest is
--      what it points at: the platform manifest of an index ('index_child'), or the subject of
--      a referrer such as a signature or SBOM ('subject'). ref_digest need not exist (a
--      dangling referrer whose subject was deleted stays visible).
--   Never insert stale = true without stale_reason and stale_since (check constraint).
-- ============================================================================================

-- A registry ebb reads and cleans. Triggers: registries_before_write (repositories list),
-- registries_after_delete (its sync schedule goes with it).
create table ebb.registries (
  id               bigint generated always as identity primary key,
  name             text not null unique
                   check (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  base_url         text not null check (base_url ~ '^https?://[^/@]+$'),
  auth_kind        text not null default 'anonymous'
                   check (auth_kind in ('anonymous', 'basic', 'bearer')),
  credentials_ref  text,
  last_synced_at   timestamptz,
  created_at       timestamptz not null default now(),
  repositories     text[]
);

-- A repository of a registry. STALE: the last sync could not read it completely; its rows
-- are the last known truth and retention must not delete in it until a sync succeeds again.
create table ebb.repositories (
  id            bigint generated always as identity primary key,
  registry_id   bigint not null references ebb.registries (id) on delete cascade,
  name          text not null check (name ~ '^[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$'),
  stale         boolean not null default false,
  stale_reason  text,
  stale_since   timestamptz,
  last_synced_at timestamptz,
  deleted_at    timestamptz,
  created_at    timestamptz not null default now(),
  unique (registry_id, name),
  check (stale = (stale_reason is not null) and stale = (stale_since is not null))
);
-- A project's repositories (the first path segment) in name order: retention planning reads
-- them by this index (a LIKE 'team/%' cannot bound the (registry_id, name) range under every
-- collation).
create index repositories_project_idx on ebb.repositories (registry_id, (split_part(name, '/', 1)), name);

-- A manifest in a repository, by digest. Trigger: artifacts_seed_inspected.
create table ebb.artifacts (
  repository_id    bigint not null references ebb.repositories (id) on delete cascade,
  digest           text not null check (digest ~ '^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$'),
  media_type       text not null,
  artifact_type    text,
  size             bigint not null check (size >= 0),
  pushed_at        timestamptz not null default now(),
  pushed_at_source text not null default 'sync' check (pushed_at_source in ('event', 'sync', 'seed')),
  pulled_at        timestamptz,
  created_at       timestamptz,
  inspected_at     timestamptz,
  primary key (repository_id, digest)
);
-- "all artifacts of a repository ordered by push time" (newest first, ties by digest, the
-- retention tie-break) is a scan of this index.
create index artifacts_repository_pushed_idx
  on ebb.artifacts (repository_id, pushed_at desc, digest);
-- latestPulledN / nDaysSinceLastPull read by pull time.
create index artifacts_repository_pulled_idx
  on ebb.artifacts (repository_id, pulled_at desc nulls last, digest);
-- "does this repository hold uninspected artifacts / which" (retention's refusal, sync's
-- read list): empty in a steady state, so both are an index probe.
create index artifacts_uninspected_idx
  on ebb.artifacts (repository_id, digest) where inspected_at is null;

-- A tag: a name in a repository pointing at one artifact.
create table ebb.tags (
  repository_id bigint not null,
  name          text not null check (name ~ '^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$'),
  digest        text not null,
  pushed_at     timestamptz,
  pulled_at     timestamptz,
  primary key (repository_id, name),
  foreign key (repository_id, digest) references ebb.artifacts (repository_id, digest) on delete cascade
);
-- tags of an artifact (candidate assembly, cascade on artifact delete)
create index tags_artifact_idx on ebb.tags (repository_id, digest);

-- An edge declared by a manifest: an index's child, or a referrer's subject.
create table ebb.artifact_references (
  repository_id bigint not null,
  digest        text not null,
  kind          text not null check (kind in ('index_child', 'subject')),
  ref_digest    text not null check (ref_digest ~ '^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$'),
  platform      text,
  primary key (repository_id, digest, kind, ref_digest),
  foreign key (repository_id, digest) references ebb.artifacts (repository_id, digest) on delete cascade
);
-- "what points at X": referrers of a subject, indexes holding a child
create index artifact_references_ref_idx on ebb.artifact_references (repository_id, ref_digest);

comment on table ebb.registries is
  'a container registry ebb syncs and cleans; policies and sync schedules point at it';
comment on column ebb.registries.name is 'short name used by the CLI and policies (lowercase, [a-z0-9._-])';
comment on column ebb.registries.base_url is 'scheme and host[:port] of the registry, no path (e.g. http://127.0.0.1:5000)';
comment on column ebb.registries.auth_kind is 'anonymous, basic or bearer';
comment on column ebb.registries.credentials_ref is
  'where the secret lives (env:NAME or file:/path holding "user:password"), never the secret itself';
comment on column ebb.registries.last_synced_at is 'end of the last complete sync of the registry';
comment on column ebb.registries.repositories is
  'repositories a sync reads when the registry does not serve /v2/_catalog: names, or doublestar patterns matched against known repositories; null = list them with /v2/_catalog';

comment on table ebb.repositories is 'a repository of a registry, as last read by sync or learnt from push events';
comment on column ebb.repositories.name is 'repository name without the registry host (OCI grammar), e.g. team/app';
comment on column ebb.repositories.stale is
  'the last sync could not read the repository completely: its rows are the last known truth and retention refuses it';
comment on column ebb.repositories.stale_reason is 'why the repository is stale (set together with stale and stale_since)';
comment on column ebb.repositories.stale_since is 'when the repository became stale';
comment on column ebb.repositories.deleted_at is 'set when the registry confirmed the repository is gone; its artifacts are removed';

comment on table ebb.artifacts is 'a manifest (image, index, signature, SBOM, ...) in a repository, by digest';
comment on column ebb.artifacts.digest is 'the manifest digest, algorithm:hex';
comment on column ebb.artifacts.artifact_type is 'the manifest''s artifactType (or its config media type for OCI artifacts), when known';
comment on column ebb.artifacts.pushed_at is
  'when the manifest arrived in the repository (push event time, or first seen by a sync); a later push of the same digest does not move it';
comment on column ebb.artifacts.pushed_at_source is 'where pushed_at comes from: event, sync or seed';
comment on column ebb.artifacts.pulled_at is 'last pull reported by the registry''s notifications; null = never pulled';
comment on column ebb.artifacts.created_at is 'the image config''s created time; null when unknown or not an image';
comment on column ebb.artifacts.inspected_at is
  'when ebb last read this manifest from the registry; null = known only from a push event: retention refuses the repository until a sync reads it';

comment on table ebb.tags is 'a tag of a repository and the artifact it points at';
comment on column ebb.tags.pushed_at is 'the tag''s last push onto its current digest; null when only a sync saw it';
comment on column ebb.tags.pulled_at is 'last pull by this tag reported by the registry''s notifications';

comment on table ebb.artifact_references is
  'edges declared by a manifest: an index''s platform manifests (index_child) and a referrer''s subject (subject)';
comment on column ebb.artifact_references.digest is 'the artifact whose manifest declares the edge';
comment on column ebb.artifact_references.ref_digest is 'what the edge points at; need not exist (a dangling referrer stays visible)';
comment on column ebb.artifact_references.platform is '"os/architecture[/variant]" of an index child';

-- ============================================================================================
-- 2. Scheduling: schedules, executions, tasks, task logs, worker heartbeats.
--
-- A schedule row says WHEN something runs (cron + IANA timezone); an execution is one run of
-- a kind (retention, sync, ...) for one target; its tasks are the units of work (one per
-- repository for retention), each a graphile-worker job. Users write schedules and read
-- history with plain SQL:
--   insert into ebb.schedules (kind, target_id, cron, timezone, spread_seconds)
--     values ('retention', 42, '0 0 0 * * *', 'Europe/Berlin', 3600);
--   insert into ebb.schedules (kind, target_id, cron, timezone, spread_seconds)   -- a sync
--     select 'sync', id, '0 */6 * * *', 'UTC', 600 from ebb.registries where name = 'local';
--   select ebb.trigger_execution('retention', 42);                     -- run now
--   update ebb.executions set stop_requested = true where id = 7;     -- stop
--   select * from ebb.execution_summary order by id desc limit 20;
--   select * from ebb.schedules where invalid_reason is not null;     -- rows the scheduler refused
-- ============================================================================================

-- The kinds of work ebb knows. A foreign key (not a CHECK) so that a new kind is one INSERT.
create table ebb.execution_kinds (
  name text primary key check (name ~ '^[a-z][a-z0-9_]{0,62}$')
);
insert into ebb.execution_kinds (name) values ('retention'), ('sync');

-- Time zone names accepted so far: pg_timezone_names reads the zone files on every lookup,
-- so ebb.timezone_error looks a name up once and remembers it here.
create table ebb.known_timezones (
  name text primary key
);

-- When a kind runs for a target. Triggers: schedules_before_write (validation, bookkeeping
-- reset), schedules_cron_ranges (field ranges).
create table ebb.schedules (
  id               bigint generated always as identity primary key,
  kind             text not null references ebb.execution_kinds (name),
  target_id        bigint not null,
  cron             text not null,
  timezone         text not null default 'UTC',
  enabled          boolean not null default true,
  dry_run          boolean not null default false,
  misfire          text not null default 'run_once'
                   check (misfire in ('skip', 'run_once', 'backfill')),
  backfill_window  interval not null default interval '1 hour'
                   check (backfill_window > interval '0' and backfill_window <= interval '31 days'),
  overlap          text not null default 'skip' check (overlap in ('skip', 'queue')),
  spread_seconds   integer not null default 0 check (spread_seconds between 0 and 86400),
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

-- One run of a kind for a target. Triggers: executions_status_monotonic, executions_before_stop,
-- executions_after_stop, executions_notify_stop.
create table ebb.executions (
  id              bigint generated always as identity primary key,
  kind            text not null references ebb.execution_kinds (name),
  target_id       bigint not null,
  schedule_id     bigint references ebb.schedules (id) on delete set null,
  fire_time       timestamptz not null default now(),
  trigger         text not null check (trigger in ('schedule', 'manual', 'event')),
  status          text not null default 'pending'
                  check (status in ('pending', 'running', 'success', 'error', 'stopped')),
  dry_run         boolean not null default false,
  stop_requested  boolean not null default false,
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

-- A unit of work of an execution, run as one graphile-worker job. Trigger:
-- tasks_status_monotonic.
create table ebb.tasks (
  id            bigint generated always as identity primary key,
  execution_id  bigint not null references ebb.executions (id) on delete cascade,
  key           text not null,
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

-- Log lines of a task.
create table ebb.task_logs (
  id       bigint generated always as identity primary key,
  task_id  bigint not null references ebb.tasks (id) on delete cascade,
  at       timestamptz not null default now(),
  level    text not null check (level in ('debug', 'info', 'warn', 'error')),
  message  text not null
);
create index task_logs_task_idx on ebb.task_logs (task_id, id);

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

comment on table ebb.execution_kinds is 'the kinds of work ebb knows (retention, sync); a new kind is one INSERT';
comment on table ebb.known_timezones is 'IANA time zone names already accepted (a cache of pg_timezone_names lookups)';

comment on table ebb.schedules is
  'when a kind runs for a target: cron + time zone, with spread, misfire and overlap rules; retention schedules follow their policy';
comment on column ebb.schedules.kind is 'what runs (ebb.execution_kinds)';
comment on column ebb.schedules.target_id is 'the policy id (retention) or registry id (sync); one schedule per (kind, target)';
comment on column ebb.schedules.cron is 'cron expression: 5 fields (minute first), 6 (seconds first, Harbor''s) or a nickname (@daily)';
comment on column ebb.schedules.timezone is 'IANA time zone the cron is read in';
comment on column ebb.schedules.dry_run is 'executions of this schedule delete nothing';
comment on column ebb.schedules.misfire is
  'after downtime: skip missed slots, run_once for all of them, or backfill every missed slot newer than backfill_window (at most 100 per tick)';
comment on column ebb.schedules.backfill_window is 'how far back misfire = backfill reaches';
comment on column ebb.schedules.overlap is
  'while an execution of this schedule is open: skip the new slot, or queue it (runs when the previous one ends; at most 10 waiting)';
comment on column ebb.schedules.spread_seconds is 'fires of one cron slot are spread over this many seconds: offset = hash(id) mod spread';
comment on column ebb.schedules.invalid_reason is
  'set by the scheduler when its cron parser refuses the row; cleared when cron or timezone change';
comment on column ebb.schedules.next_slot is 'scheduler bookkeeping: the next cron slot (null = computed at the next tick)';
comment on column ebb.schedules.next_due_at is 'scheduler bookkeeping: next_slot plus the spread offset';
comment on column ebb.schedules.skipped_fires is 'slots not run (overlap = skip, misfire = skip, full queue)';
comment on column ebb.schedules.last_skip_reason is 'why the last slot was not run';

comment on table ebb.executions is
  'one run of a kind for a target (scheduled, manual or event); pending -> running -> success, error or stopped';
comment on column ebb.executions.target_id is 'the policy id (retention) or registry id (sync)';
comment on column ebb.executions.fire_time is 'the nominal cron slot (without spread) for scheduled runs; the request time otherwise';
comment on column ebb.executions.trigger is 'schedule, manual or event';
comment on column ebb.executions.stop_requested is
  'set to true to stop: pending tasks stop at once, running ones before their next registry call';
comment on column ebb.executions.enqueued is 'false while queued behind a running execution of the same schedule (overlap = queue)';
comment on column ebb.executions.plan_job_id is 'the graphile-worker job that plans the execution''s tasks';
comment on column ebb.executions.planned is 'all tasks are created: the execution ends when the last of them ends';
comment on column ebb.executions.error is 'why the execution failed (planning error); task errors are on the tasks';
comment on column ebb.executions.tasks_total is 'number of tasks, written when the execution ends (live counts: execution_summary)';

comment on table ebb.tasks is 'a unit of work of an execution (e.g. one repository), run as one graphile-worker job';
comment on column ebb.tasks.key is 'what the task works on, unique in its execution (e.g. the repository name)';
comment on column ebb.tasks.task_group is 'concurrency group (e.g. the registry): at most N tasks of one group run at once';
comment on column ebb.tasks.attempts is 'attempts started; a finisher of a replaced attempt changes nothing';
comment on column ebb.tasks.job_id is 'the graphile-worker job running the task';
comment on column ebb.tasks.total is 'candidates seen (retention: artifacts decided on)';
comment on column ebb.tasks.details is 'kind-specific result (e.g. skipped deletions, catalog age)';

comment on table ebb.task_logs is 'log lines of a task';
comment on table ebb.worker_heartbeats is
  'one row per worker pool, refreshed every few seconds; a silent pool is declared dead and its jobs run again elsewhere';

-- ============================================================================================
-- 3. Retention: policies and their rules (written by users with plain SQL, validated by
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
-- ============================================================================================

create type ebb.policies_deletion_unit as enum ('artifact', 'untag');

create type ebb.policy_rules_template as enum (
  'latestPushedK', 'latestPulledN', 'nDaysSinceLastPush', 'nDaysSinceLastPull', 'always',
  'latestActiveK', 'latestPerSemverLine');

-- A retention policy. Triggers: policies_before_write (validation), policies_cron_ranges,
-- policies_dry_run_reads_check, policies_sync_schedule (its schedule row).
create table ebb.policies (
  id             bigint generated always as identity primary key,
  name           text not null unique,
  -- deleting a registry that policies point at is refused: delete the policies first
  registry_id    bigint not null references ebb.registries (id) on delete restrict,
  scope          jsonb not null default '{}',
  deletion_unit  ebb.policies_deletion_unit not null default 'artifact',
  max_deletions  numeric,
  max_fraction   numeric,
  protected      jsonb not null default '[]',
  cron           text,
  timezone       text not null default 'UTC',
  enabled        boolean not null default true,
  dry_run        boolean not null default false,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now(),
  dry_run_reads  text not null default 'registry'
);
create index policies_registry_idx on ebb.policies (registry_id);

-- A rule of a policy (at most 15). Triggers: policy_rules_before_write (validation),
-- policy_rules_touch_policy.
create table ebb.policy_rules (
  id                    bigint generated always as identity primary key,
  policy_id             bigint not null references ebb.policies (id) on delete cascade,
  position              smallint not null,
  template              ebb.policy_rules_template not null,
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

-- The policy exactly as one retention execution evaluated it (written once when the execution
-- is planned): every task of the execution decides with the same rules even if the policy is
-- edited meanwhile, and the audit shows what was applied.
create table ebb.retention_runs (
  execution_id    bigint primary key references ebb.executions (id) on delete cascade,
  policy_id       bigint not null,
  policy_name     text not null,
  registry_id     bigint not null,
  policy          jsonb not null,
  rule_positions  smallint[] not null,
  dry_run         boolean not null,
  evaluated_at    timestamptz not null,
  created_at      timestamptz not null default now(),
  dry_run_reads   text not null default 'registry' check (dry_run_reads in ('registry', 'catalog'))
);

-- One row per artifact per execution: what was decided, why, and what the registry said.
-- repository_id has no foreign key (the audit outlives the catalog rows of deleted
-- artifacts); task_id has none either (tasks are only deleted with their execution, and a
-- decision is written by its own task): execution_id's foreign key cascades both.
create table ebb.decisions (
  id              bigint generated always as identity primary key,
  execution_id    bigint not null references ebb.executions (id) on delete cascade,
  task_id         bigint not null,
  repository_id   bigint not null,
  repository      text not null,
  digest          text not null,
  tags            text[] not null default '{}',
  media_type      text,
  action          text not null check (action in ('retain', 'protected', 'delete', 'untag', 'error')),
  planned_action  text check (planned_action in ('delete', 'untag')),
  untag_tags      text[],
  reason          text not null,
  rule            smallint,
  role            text not null check (role in ('candidate', 'index_child', 'referrer')),
  pushed_at       timestamptz,
  pulled_at       timestamptz,
  outcome         text not null check (outcome in ('none', 'dry_run', 'pending', 'deleted', 'already_deleted', 'failed', 'unsupported', 'skipped')),
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

comment on type ebb.policies_deletion_unit is 'artifact: delete the manifest; untag: a unit is one tag';
comment on type ebb.policy_rules_template is 'the retention rule templates (Harbor''s, plus latestPerSemverLine)';

comment on table ebb.policies is
  'a retention policy: which repositories of a registry, which tags are protected, the caps, when it runs; its rules are in policy_rules';
comment on column ebb.policies.scope is
  '{"projects": [pattern], "repositories": [repository selector]}: the repositories the policy covers';
comment on column ebb.policies.deletion_unit is 'artifact (delete manifests) or untag (a unit is one tag)';
comment on column ebb.policies.max_deletions is
  'per-repository cap: a plan deleting more aborts that repository''s task, deleting nothing';
comment on column ebb.policies.max_fraction is
  'per-repository cap (0..1 of its candidates): a plan deleting more aborts that repository''s task, deleting nothing';
comment on column ebb.policies.protected is '[{"tag": pattern, "repository_selectors": [...]}]: tags that always survive';
comment on column ebb.policies.cron is 'when the policy runs (its ebb.schedules row follows it); null = manual runs only';
comment on column ebb.policies.timezone is 'IANA time zone of the cron';
comment on column ebb.policies.enabled is 'false: no scheduled runs (manual runs still work)';
comment on column ebb.policies.dry_run is 'every run of the policy decides and records, deleting nothing';
comment on column ebb.policies.dry_run_reads is
  'where a dry run reads the repository: registry (default, the same fresh read as a real run) or catalog (no registry call)';

comment on table ebb.policy_rules is 'a retention rule of a policy (at most 15; an artifact is retained when any rule retains it)';
comment on column ebb.policy_rules.position is '0..14, the rule''s place in its policy; the next free one when inserted null';
comment on column ebb.policy_rules.params is 'key = template id, e.g. {"latestPushedK": 10}; {} for always';
comment on column ebb.policy_rules.tag_selectors is 'tag patterns the rule applies to ([{"kind", "decoration", "pattern", "untagged"}])';
comment on column ebb.policy_rules.repository_selectors is 'repository patterns the rule applies to ([{"kind", "decoration", "pattern"}])';
comment on column ebb.policy_rules.disabled is 'a disabled rule retains nothing';

comment on table ebb.retention_runs is
  'the policy exactly as one retention execution evaluated it (written when the execution is planned)';
comment on column ebb.retention_runs.policy is 'ebb''s policy JSON (policy_schema.ts), rules in position order';
comment on column ebb.retention_runs.rule_positions is 'policy_rules.position of policy.rules[i] (decisions.rule holds the position)';
comment on column ebb.retention_runs.dry_run is 'the execution''s dry_run or the policy''s';
comment on column ebb.retention_runs.evaluated_at is '"now" of every decision of the execution (the cron slot, or the request time)';
comment on column ebb.retention_runs.dry_run_reads is 'the policy''s dry_run_reads when the execution was planned';

comment on table ebb.decisions is
  'the audit: one row per artifact per retention execution - what was decided, why, and what the registry answered';
comment on column ebb.decisions.action is 'retain, protected, delete, untag or error; only delete and untag call the registry';
comment on column ebb.decisions.planned_action is 'set when a cap aborted the repository: what would have happened';
comment on column ebb.decisions.untag_tags is 'deletion unit untag: the tags to remove';
comment on column ebb.decisions.reason is 'why, in words (the rule that retained it, the cap, the refusal)';
comment on column ebb.decisions.rule is 'policy_rules.position of the rule that retained it (lowest wins)';
comment on column ebb.decisions.role is 'candidate, index_child or referrer (children and referrers follow their index or subject)';
comment on column ebb.decisions.pushed_at is 'the last push of the artifact or any of its tags';
comment on column ebb.decisions.pulled_at is 'the last pull of the artifact or any of its tags';
comment on column ebb.decisions.outcome is
  'none (nothing to do), dry_run (would have acted), pending (to do), deleted, already_deleted (the registry answered 404), failed (see error), unsupported (untag of some tags only), skipped (the repository changed before the deletion)';
comment on column ebb.decisions.acted_at is 'when the registry call was made';

-- ============================================================================================
-- 4. Views
-- ============================================================================================

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

-- Sync schedules by registry name.
create view ebb.sync_schedules as
select r.name as registry, s.id as schedule_id, s.cron, s.timezone, s.enabled, s.spread_seconds,
       s.misfire, s.overlap, s.next_due_at, s.last_fired_at, s.invalid_reason
  from ebb.schedules s
  join ebb.registries r on r.id = s.target_id
 where s.kind = 'sync';

comment on view ebb.execution_summary is
  'executions with live task counts; a stuck execution shows as running with open_tasks = 0';
comment on view ebb.sync_schedules is 'sync schedules (ebb.schedules of kind sync) by registry name';
