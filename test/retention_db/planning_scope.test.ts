import assert from "node:assert/strict";
import { test } from "node:test";
import { configSchema } from "../../src/config/schema.js";
import type { Execution } from "../../src/executions/kind.js";
import { retentionKind } from "../../src/retention/retention_kind.js";
import type { AppContext } from "../../src/service/context.js";
import { freshDatabase } from "../support/db.js";

test("planning gives a task to exactly the in-scope repositories, whether the scope is literal projects or a wildcard", async () => {
  const db = await freshDatabase();
  const { q } = db;
  const [{ id: registryId }] = await q("insert into ebb.registries (name, base_url) values ('local', 'http://127.0.0.1:1') returning id");
  const names = ["team/a", "team/b/deep", "teamx/c", "tea_m/d", "other/e", "team", "x_y/z", "x-y/z"];
  for (const n of names) await q("insert into ebb.repositories (registry_id, name) values ($1, $2)", [registryId, n]);
  await q("update ebb.repositories set deleted_at = now() where name = 'team/b/deep'");
  await q("insert into ebb.repositories (registry_id, name) values ($1, 'team/b')", [registryId]);

  const ctx = { pool: db.pool, config: configSchema.parse({}) } as AppContext;
  const planned = async (projects: object[]): Promise<string[]> => {
    const [{ id: policyId }] = await q(
      "insert into ebb.policies (name, registry_id, scope) values ($1, $2, $3) returning id",
      [`p${Math.random()}`, registryId, JSON.stringify({ projects })],
    );
    await q(`insert into ebb.policy_rules (policy_id, template, params, tag_selectors, repository_selectors)
             values ($1, 'always', '{}', '[]', '[]')`, [policyId]);
    const [{ id }] = await q("select ebb.trigger_execution('retention', $1, true) as id", [policyId]);
    const execution: Execution = { id, kind: "retention", targetId: policyId, scheduleId: null, fireTime: new Date(), trigger: "manual", dryRun: true };
    const keys: string[] = [];
    for await (const batch of retentionKind({ batchSize: 2 }).planTasks(ctx, execution)) keys.push(...batch.map((t) => t.key));
    return keys.sort();
  };

  // literal projects: read by LIKE 'team/%' in SQL; '_' in a name is not a LIKE wildcard
  assert.deepEqual(await planned([{ kind: "glob", pattern: "team" }]), ["team/a", "team/b"]);
  assert.deepEqual(await planned([{ kind: "glob", pattern: "x_y" }]), ["x_y/z"]);
  assert.deepEqual(await planned([{ kind: "glob", pattern: "team" }, { kind: "glob", pattern: "other" }]), ["other/e", "team/a", "team/b"]);
  // wildcards and regexes read every repository and let scopeOf decide
  assert.deepEqual(await planned([{ kind: "glob", pattern: "team*" }]), ["team/a", "team/b", "teamx/c"]);
  assert.deepEqual(await planned([{ kind: "regex", pattern: "tea.m" }]), ["tea_m/d"]);
  // no project in the scope: every (not deleted) repository
  assert.deepEqual(await planned([]), ["other/e", "tea_m/d", "team", "team/a", "team/b", "teamx/c", "x-y/z", "x_y/z"].sort());
});
