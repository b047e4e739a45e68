-- What an artifact's push time means: when its manifest arrived in the repository.
--
-- ebb.artifacts.pushed_at is the time the manifest arrived (the push event's time, or when a
-- sync first saw it). A push of a digest that is already in the repository - a new tag on an
-- old build, a tag moved onto it, the same bytes pushed again - leaves it; that push is
-- recorded on the tag (ebb.tags.pushed_at: the tag's last push onto its digest). Retention's
-- count rules (latestPushedK, latestActiveK) rank artifacts by ebb.artifacts.pushed_at, so a
-- re-tag never ranks an old build as new; nDaysSinceLastPush uses the later of the artifact's
-- and its tags' push times.
--
-- Rows written before this contract may carry the time of a later push of the same digest.
-- A tag pushed onto a digest proves the manifest was there by then, so the earliest push time
-- of the artifact's tags is never earlier than its arrival: take it where it is earlier. Rows
-- without tag push times (read by sync) are left as they are.
update ebb.artifacts a
   set pushed_at = t.first_tag_push
  from (select repository_id, digest, min(pushed_at) as first_tag_push
          from ebb.tags
         where pushed_at is not null
         group by repository_id, digest) t
 where a.repository_id = t.repository_id
   and a.digest = t.digest
   and t.first_tag_push < a.pushed_at;

comment on column ebb.artifacts.pushed_at is
  'when the manifest arrived in the repository (push event time, or first seen by a sync); a later push of the same digest does not move it';
comment on column ebb.tags.pushed_at is
  'the tag''s last push onto its current digest; null when only a sync saw it';
