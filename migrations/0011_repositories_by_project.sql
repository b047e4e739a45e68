-- A retention execution plans its tasks from the repositories of its policy's projects. Most
-- policies name their projects literally (Harbor's policies are per project), and planning
-- read them as `name like 'team/%'` over the (registry_id, name) index: a LIKE cannot bound
-- that index's range under every collation, so each planning walked the registry's names
-- from the start up to the project's (3 ms per execution at 20,000 repositories; 10,000 of
-- them in a midnight storm). This index finds a project's repositories directly, in name
-- order (src/retention/retention_kind.ts keeps the LIKE as the exact test: a repository
-- named like a project, without a slash, is not in it).
create index repositories_project_idx on ebb.repositories (registry_id, (split_part(name, '/', 1)), name);
