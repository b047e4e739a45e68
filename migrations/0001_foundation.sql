-- ebb foundation: the schema every ebb table lives in.
-- graphile-worker's own tables live in schema ebb_worker, installed by `ebb migrate`
-- (or `npx graphile-worker --schema ebb_worker --schema-only -c $DATABASE_URL`).
-- The ledger ebb.schema_migrations is created by the migrator itself, under its lock.
create schema if not exists ebb;

comment on schema ebb is
  'ebb: policies, schedules, executions, tasks, decisions and the registry catalog';
