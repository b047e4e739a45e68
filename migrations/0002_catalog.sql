-- ebb catalog: what a registry holds, as last read by sync or reported by notifications.
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
--      digest is the manifest digest (algorithm:hex). pushed_at is required (when ebb first
--      knew of it: the push event's time, or the first sync that saw it); pushed_at_source
--      says which ('event' | 'sync' | 'seed'). pulled_at null = never pulled. created_at is
--      the image config's `created`, null when unknown or not an image.
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

create table ebb.registries (
  id               bigint generated always as identity primary key,
  name             text not null unique
                   check (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  base_url         text not null check (base_url ~ '^https?://[^/@]+$'),
  auth_kind        text not null default 'anonymous'
                   check (auth_kind in ('anonymous', 'basic', 'bearer')),
  -- where the secret lives (e.g. an env var name or a file path), never the secret itself
  credentials_ref  text,
  last_synced_at   timestamptz,
  created_at       timestamptz not null default now()
);

create table ebb.repositories (
  id            bigint generated always as identity primary key,
  registry_id   bigint not null references ebb.registries (id) on delete cascade,
  name          text not null check (name ~ '^[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$'),
  -- STALE: the last sync could not read this repository completely; its rows are the last
  -- known truth and retention must not delete in it until a sync succeeds again.
  stale         boolean not null default false,
  stale_reason  text,
  stale_since   timestamptz,
  last_synced_at timestamptz,
  -- set when the registry confirmed the repository is gone; its artifacts are removed
  deleted_at    timestamptz,
  created_at    timestamptz not null default now(),
  unique (registry_id, name),
  check (stale = (stale_reason is not null) and stale = (stale_since is not null))
);

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
  primary key (repository_id, digest)
);

-- "all artifacts of a repository ordered by push time" (newest first, ties by digest, the
-- retention tie-break) is a scan of this index.
create index artifacts_repository_pushed_idx
  on ebb.artifacts (repository_id, pushed_at desc, digest);
-- latestPulledN / nDaysSinceLastPull read by pull time.
create index artifacts_repository_pulled_idx
  on ebb.artifacts (repository_id, pulled_at desc nulls last, digest);

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

create table ebb.artifact_references (
  repository_id bigint not null,
  digest        text not null,
  kind          text not null check (kind in ('index_child', 'subject')),
  ref_digest    text not null check (ref_digest ~ '^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$'),
  -- "os/architecture[/variant]" of an index child
  platform      text,
  primary key (repository_id, digest, kind, ref_digest),
  foreign key (repository_id, digest) references ebb.artifacts (repository_id, digest) on delete cascade
);
-- "what points at X": referrers of a subject, indexes holding a child
create index artifact_references_ref_idx on ebb.artifact_references (repository_id, ref_digest);
