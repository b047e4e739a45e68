-- Artifact inspection: whether ebb has read an artifact's manifest from the registry.
--
-- A push notification carries the digest, media type and size of a manifest, but not its
-- `subject` (signature/SBOM referrers), its artifactType, its index children's platforms or
-- its config's `created`. An artifact first learned from a push event therefore looks like a
-- plain untagged manifest until sync reads it; retention must not decide over a repository
-- holding such rows (a referrer could be deleted while its subject is kept).
--
-- inspected_at: when ebb last read this artifact's manifest (and config) from the registry;
--   null = never (known only from a push event, or not read yet). Sync reads every
--   artifact with inspected_at null and sets it in the same transaction that writes the
--   manifest's media type, artifactType, created_at and artifact_references rows. A re-push
--   of the same digest keeps it: a digest is a content address, the manifest cannot change.
--
-- SEEDING CONTRACT (amends step 3 of 0002_catalog.sql): a row inserted with
--   pushed_at_source = 'seed' declares its media_type, artifact_type, created_at and
--   artifact_references complete, so it is inspected: the trigger below sets inspected_at
--   = now() when the insert leaves it null (seeders need not name the column; they may set
--   it themselves). Rows inserted with any other pushed_at_source and no inspected_at stay
--   uninspected, and retention refuses their repository until a sync has read them.

alter table ebb.artifacts add column inspected_at timestamptz;

-- What sync already read ('sync') and what seeders declared complete ('seed') is inspected;
-- rows from push events ('event') are not: the next sync reads them.
update ebb.artifacts set inspected_at = now() where pushed_at_source in ('sync', 'seed');

-- "does this repository hold uninspected artifacts / which" (retention's refusal, sync's
-- read list): a partial index, empty in a steady state, so both are an index probe.
create index artifacts_uninspected_idx
  on ebb.artifacts (repository_id, digest) where inspected_at is null;

create function ebb.artifacts_seed_inspected() returns trigger
language plpgsql
as $$
begin
  new.inspected_at := now();
  return new;
end
$$;

create trigger artifacts_seed_inspected
  before insert on ebb.artifacts
  for each row
  when (new.pushed_at_source = 'seed' and new.inspected_at is null)
  execute function ebb.artifacts_seed_inspected();
