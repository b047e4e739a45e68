// Policies as rows: PostgreSQL refuses bad rows naming the field, the schedule row follows the
// policy, rows read back as the same Policy a file gives, and `ebb policy ...` over the DB.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { registerPolicy } from "../../src/cli/commands/policy.js";
import { UsageError } from "../../src/cli/exit_codes.js";
import { parsePolicy } from "../../src/retention/policy_schema.js";
import { insertPolicy, readStoredPolicy, toPolicy } from "../../src/retention/policy_store.js";
import { freshDatabase } from "../support/db.js";

const db = await freshDatabase();
const { q } = db;
const registryId = (await q("insert into ebb.registries (name, base_url) values ('local', 'http://127.0.0.1:5000') returning id"))[0].id;
const fixtures = fileURLToPath(new URL("../fixtures/retention/", import.meta.url));

async function refused(sql: string, params: unknown[], message: RegExp): Promise<void> {
  await assert.rejects(q(sql, params), (err: Error) => {
    assert.match(err.message, message);
    return true;
  });
}

test("PostgreSQL refuses bad policy rows with messages naming the field", async () => {
  const [{ id }] = await q("insert into ebb.policies (name, registry_id) values ('v', $1) returning id", [registryId]);
  const rule = "insert into ebb.policy_rules (policy_id, template, params, tag_selectors, repository_selectors) values ($1, $2, $3, $4, $5)";
  const ok = '[{"decoration": "matches", "pattern": "**"}]';
  await refused(rule, [id, "latestPushedK", '{"latestPushedK": -1}', ok, "[]"], /^policy_rules\.params\.latestPushedK: is less than zero$/);
  await refused(rule, [id, "latestPushedK", '{"latestPushedK": 32767}', ok, "[]"], /^policy_rules\.params\.latestPushedK: is too large$/);
  await refused(rule, [id, "nDaysSinceLastPull", '{"nDaysSinceLastPull": 2.5}', ok, "[]"], /^policy_rules\.params\.nDaysSinceLastPull: must be an integer$/);
  await refused(rule, [id, "nDaysSinceLastPush", '{"nDaysSinceLastPush": 20190905}', ok, "[]"], /^policy_rules\.params\.nDaysSinceLastPush: is too large$/);
  await refused(rule, [id, "latestPulledN", "{}", ok, "[]"], /^policy_rules\.params\.latestPulledN: is required$/);
  await refused(rule, [id, "always", '{"latestPushedK": 1}', ok, "[]"], /^policy_rules\.params: unknown field "latestPushedK" for template always$/);
  await refused(rule, [id, "latestPushedk", "{}", ok, "[]"], /invalid input value for enum ebb\.policy_rules_template: "latestPushedk"/);
  await refused(rule, [id, "always", "{}", '[{"decoration": "matches", "pattern": ""}]', "[]"], /^policy_rules\.tag_selectors\[0\]\.pattern: must not be empty$/);
  await refused(rule, [id, "always", "{}", '[{"decoration": "contains", "pattern": "x"}]', "[]"], /^policy_rules\.tag_selectors\[0\]\.decoration: must be "matches" or "excludes"$/);
  await refused(rule, [id, "always", "{}", ok, '[{"decoration": "matches", "pattern": "a", "untagged": true}]'], /^policy_rules\.repository_selectors\[0\]: unknown field "untagged"$/);
  await refused(rule, [id, "latestPerSemverLine", '{"keep": 3, "line": "patch"}', ok, "[]"], /^policy_rules\.params\.line: must be "major" or "minor"$/);

  // at most 15 rules; the 16th is refused by name
  for (let k = 0; k < 15; k++) await q(rule, [id, "latestPushedK", JSON.stringify({ latestPushedK: k }), ok, "[]"]);
  await refused(rule, [id, "latestPushedK", '{"latestPushedK": 99}', ok, "[]"], /already has 15 rules, the most a policy can have/);
  await refused("insert into ebb.policy_rules (policy_id, position, template) values ($1, 15, 'always')", [id], /^policy_rules\.position: must be between 0 and 14/);
  await q("delete from ebb.policy_rules where policy_id = $1 and position > 0", [id]);
  // duplicates (key order and `disabled` do not matter)
  await refused("insert into ebb.policy_rules (policy_id, template, params, tag_selectors, disabled) values ($1, 'latestPushedK', '{\"latestPushedK\": 0}', $2, true)",
    [id, '[{"pattern": "**", "decoration": "matches"}]'], /^policy_rules: duplicates the rule at position 0 of policy/);

  const pol = "insert into ebb.policies (name, registry_id, scope, protected, max_deletions, max_fraction, cron, timezone) values ($1, $2, $3, $4, $5, $6, $7, $8)";
  await refused(pol, ["", registryId, "{}", "[]", null, null, null, "UTC"], /^policies\.name: must not be empty$/);
  await refused(pol, ["a", registryId, '{"repos": []}', "[]", null, null, null, "UTC"], /^policies\.scope: unknown field "repos"$/);
  await refused(pol, ["a", registryId, '{"repositories": [{"pattern": "x"}]}', "[]", null, null, null, "UTC"], /^policies\.scope\.repositories\[0\]\.decoration: is required$/);
  await refused(pol, ["a", registryId, "{}", '[{"tag": {"pattern": ""}}]', null, null, null, "UTC"], /^policies\.protected\[0\]\.tag\.pattern: must not be empty$/);
  await refused(pol, ["a", registryId, "{}", "[]", -1, null, null, "UTC"], /^policies\.max_deletions: is less than zero$/);
  await refused(pol, ["a", registryId, "{}", "[]", 1.5, null, null, "UTC"], /^policies\.max_deletions: must be an integer/);
  await refused(pol, ["a", registryId, "{}", "[]", null, 1.01, null, "UTC"], /^policies\.max_fraction: is greater than 1$/);
  await refused(pol, ["a", registryId, "{}", "[]", null, null, "at midnight", "UTC"], /^policies\.cron: must have 5 fields/);
  await refused(pol, ["a", registryId, "{}", "[]", null, null, "0 0 * * *", "Europe/Nowhere"], /^policies\.timezone: Europe\/Nowhere is not an IANA time zone/);
  await refused("insert into ebb.policies (name, registry_id, deletion_unit) values ('a', $1, 'tag')", [registryId], /invalid input value for enum ebb\.policies_deletion_unit: "tag"/);
});

test("a trigger keeps exactly one schedule row in step with the policy's cron, timezone, enabled and dry_run", async () => {
  const schedule = async (policyId: number) =>
    q("select cron, timezone, enabled, dry_run, spread_seconds from ebb.schedules where kind = 'retention' and target_id = $1", [policyId]);
  const [{ id }] = await q("insert into ebb.policies (name, registry_id) values ('s', $1) returning id", [registryId]);
  assert.deepEqual(await schedule(id), [], "no cron: manual runs only, no schedule row");
  await q("update ebb.policies set cron = '0 0 3 * * *', timezone = 'Europe/Berlin', dry_run = true where id = $1", [id]);
  assert.deepEqual(await schedule(id), [{ cron: "0 0 3 * * *", timezone: "Europe/Berlin", enabled: true, dry_run: true, spread_seconds: 0 }]);
  await q("update ebb.schedules set spread_seconds = 600 where kind = 'retention' and target_id = $1", [id]);
  await q("update ebb.policies set enabled = false, dry_run = false where id = $1", [id]);
  assert.deepEqual(await schedule(id), [{ cron: "0 0 3 * * *", timezone: "Europe/Berlin", enabled: false, dry_run: false, spread_seconds: 600 }],
    "tuning on the schedule row (spread) survives policy changes");
  await q("update ebb.policies set cron = null where id = $1", [id]);
  assert.deepEqual(await schedule(id), []);
  await q("update ebb.policies set cron = '@daily' where id = $1", [id]);
  assert.equal((await schedule(id)).length, 1);
  await q("delete from ebb.policies where id = $1", [id]);
  assert.deepEqual(await schedule(id), [], "deleting the policy deletes its schedule");
});

test("a policy written as rows reads back as the Policy its file gives (same validation)", async () => {
  const file = parsePolicy(JSON.parse(await import("node:fs/promises").then((fs) => fs.readFile(join(fixtures, "ebb_policy.json"), "utf8"))));
  const client = await db.pool.connect();
  try {
    await insertPolicy(client, { ...file, name: "roundtrip" }, { registryId });
  } finally {
    client.release();
  }
  const stored = await readStoredPolicy(db.pool, "roundtrip");
  assert.ok(stored);
  assert.deepEqual(toPolicy(stored), { ...file, name: "roundtrip" });
  assert.deepEqual(stored.rulePositions, [0, 1]);
  // a pattern PostgreSQL accepts in shape but ebb cannot compile is refused when loaded
  await q("update ebb.policy_rules set tag_selectors = '[{\"kind\": \"regex\", \"decoration\": \"matches\", \"pattern\": \"(a+)+$\"}]' where policy_id = $1 and position = 1", [stored.row.id]);
  const edited = await readStoredPolicy(db.pool, "roundtrip");
  assert.throws(() => toPolicy(edited!), /rules\[1\]\.tag_selectors\[0\]\.pattern: /);
});

class Capture extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

async function ebbPolicy(args: string[]): Promise<string> {
  const out = new Capture();
  const program = new Command("ebb").exitOverride();
  registerPolicy(program, { out, env: { DATABASE_URL: db.url } });
  await program.parseAsync(["policy", ...args], { from: "user" });
  return out.text;
}

test("ebb policy create|import|list|show|enable|disable|delete over the database; bad files are usage errors naming the field", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ebb-policy-"));
  assert.match(await ebbPolicy(["create", "--file", join(fixtures, "ebb_policy.json"), "--registry", "local", "--cron", "0 0 3 * * *", "--dry-run"]),
    /policy keep-two-and-releases created \(id \d+\)/);
  assert.match(await ebbPolicy(["import", "--file", join(fixtures, "harbor_policy.json"), "--registry", "local", "--name", "from-harbor", "--project", "library"]),
    /policy from-harbor imported from Harbor \(id \d+, cron 0 0 0 \* \* \*\)/);
  const list = JSON.parse(await ebbPolicy(["list", "--json"])) as { name: string; rules: number; cron: string; dry_run: boolean }[];
  const byName = Object.fromEntries(list.map((p) => [p.name, p]));
  assert.deepEqual([byName["keep-two-and-releases"]!.rules, byName["keep-two-and-releases"]!.dry_run], [2, true]);
  assert.equal(byName["from-harbor"]!.cron, "0 0 0 * * *");
  const shown = JSON.parse(await ebbPolicy(["show", "from-harbor"]));
  assert.equal(shown.valid, true);
  assert.deepEqual(shown.policy.scope.projects, [{ kind: "glob", pattern: "library" }]);
  assert.deepEqual((await q("select s.enabled from ebb.schedules s join ebb.policies p on p.id = s.target_id where s.kind = 'retention' and p.name = 'from-harbor'"))[0], { enabled: true });
  await ebbPolicy(["disable", "from-harbor"]);
  assert.deepEqual((await q("select s.enabled from ebb.schedules s join ebb.policies p on p.id = s.target_id where s.kind = 'retention' and p.name = 'from-harbor'"))[0], { enabled: false });
  await ebbPolicy(["enable", "from-harbor"]);
  assert.match(await ebbPolicy(["delete", "from-harbor"]), /policy from-harbor deleted/);
  await assert.rejects(ebbPolicy(["show", "from-harbor"]), (err: Error) => err instanceof UsageError && /not found/.test(err.message));

  const bad = join(dir, "bad.json");
  writeFileSync(bad, JSON.stringify({ name: "bad", rules: [{ template: "latestPushedK", params: { latestPushedK: -3 } }] }));
  await assert.rejects(ebbPolicy(["create", "--file", bad, "--registry", "local"]),
    (err: Error) => err instanceof UsageError && /rules\[0\]\.params\.latestPushedK: is less than zero/.test(err.message));
  await assert.rejects(ebbPolicy(["create", "--file", join(fixtures, "ebb_policy.json"), "--registry", "local"]),
    (err: Error) => err instanceof UsageError && /policies\.name: a policy with this name already exists/.test(err.message));
  await assert.rejects(ebbPolicy(["create", "--file", join(fixtures, "ebb_policy.json"), "--registry", "nope"]),
    (err: Error) => err instanceof UsageError && /--registry nope: no such registry/.test(err.message));
  writeFileSync(bad, JSON.stringify({ name: "tz", rules: [] }));
  await assert.rejects(ebbPolicy(["create", "--file", bad, "--registry", "local", "--cron", "0 0 * * *", "--timezone", "Mars/Olympus"]),
    (err: Error) => err instanceof UsageError && /--timezone: timezone "Mars\/Olympus" is not an IANA time zone/.test(err.message));
  assert.equal((await q("select count(*)::int as n from ebb.policies where name = 'tz'"))[0].n, 0, "nothing half-written");
});
