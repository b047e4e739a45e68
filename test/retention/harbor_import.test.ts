// A Harbor user migrates by importing the retention policy JSON Harbor's API returns.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { compilePolicy } from "../../src/retention/compiled_policy.js";
import { evaluate } from "../../src/retention/evaluate.js";
import { importHarborPolicy, isHarborPolicy, parseAnyPolicy } from "../../src/retention/harbor_import.js";
import { PolicyValidationError } from "../../src/retention/policy_error.js";
import { artifact, inRepo, kept } from "./support/catalog.js";

const harborJson = async () => JSON.parse(await readFile("test/fixtures/retention/harbor_policy.json", "utf8")) as Record<string, any>;

test("Harbor fields map onto ebb's model: selectors, untagged extras, repo decorations, cron, project", async () => {
  const imported = importHarborPolicy(await harborJson(), { project: "library" });
  assert.equal(imported.cron, "0 0 0 * * *");
  assert.equal(imported.harbor_project_id, 1);
  const p = imported.policy;
  assert.equal(p.name, "harbor-project-1");
  assert.equal(p.deletion_unit, "artifact");
  assert.deepEqual(p.rules[0]!.params, { latestPushedK: 1 });
  assert.deepEqual(p.rules[0]!.tag_selectors[0], { kind: "glob", decoration: "matches", pattern: "**", untagged: false });
  assert.equal(p.rules[1]!.tag_selectors[0]!.untagged, undefined, "no extras: Harbor's default applies");
  assert.deepEqual(p.rules[1]!.repository_selectors[0], { kind: "glob", decoration: "excludes", pattern: "sandbox/**" });
  // the project pins the scope: another project's repositories are untouched
  const result = evaluate(compilePolicy(p), [inRepo("other/app", artifact("sha256:1", { tags: ["x"] })), inRepo("other/app", artifact("sha256:2", { tags: ["y"] }))], Date.now());
  assert.equal(result.repositories[0]!.outcome, "untouched");
});

test("the Harbor selector table holds through import (matches 4.* with default untagged keeps 4.0, 4.1 and the untagged one)", () => {
  const catalog = [
    inRepo("library/harbor", artifact("sha256:harbor", { tags: ["latest"] })),
    inRepo("retention/redis", artifact("sha256:redis40", { tags: ["4.0"] })),
    inRepo("retention/redis", artifact("sha256:redis41", { tags: ["4.1"] })),
    inRepo("library/special", artifact("sha256:special", {})),
  ];
  const policy = parseAnyPolicy({
    algorithm: "or",
    rules: [{ disabled: false, action: "retain", template: "always", params: {}, tag_selectors: [{ kind: "doublestar", decoration: "matches", pattern: "4.*" }], scope_selectors: { repository: [{ kind: "doublestar", decoration: "repoMatches", pattern: "**" }] } }],
    trigger: { kind: "Schedule", settings: { cron: "0 0 0 * * *" } },
    scope: { level: "project", ref: 1 },
  });
  assert.deepEqual(kept(evaluate(compilePolicy(policy), catalog, Date.now()).decisions), ["sha256:redis40", "sha256:redis41", "sha256:special"]);
});

test("refusals name the Harbor field", async () => {
  const cases: [(h: Record<string, any>) => void, RegExp][] = [
    [(h) => (h.rules[0].params.latestPushedK = 32767), /rules\[0\]\.params\.latestPushedK: is too large/],
    [(h) => (h.rules[1].params.nDaysSinceLastPull = -2), /rules\[1\]\.params\.nDaysSinceLastPull: is less than zero/],
    [(h) => (h.rules[0].template = "lastXDays"), /rules\[0\]\.template: must be one of/],
    [(h) => (h.rules[0].tag_selectors[0].decoration = "with"), /rules\[0\]\.tag_selectors\[0\]\.decoration: must be "matches" or "excludes"/],
    [(h) => (h.rules[0].tag_selectors[0].extras = "{untagged"), /rules\[0\]\.tag_selectors\[0\]\.extras: is not valid JSON/],
    [(h) => (h.rules[0].scope_selectors.repository[0].decoration = "nsMatches"), /rules\[0\]\.scope_selectors\.repository\[0\]\.decoration: must be "repoMatches" or "repoExcludes"/],
    [(h) => (h.rules[0].scope_selectors.repository[0].pattern = ""), /rules\[0\]\.scope_selectors\.repository\[0\]\.pattern: must not be empty/],
    [(h) => (h.rules[0].tag_selectors[0].kind = "label"), /rules\[0\]\.tag_selectors\[0\]\.kind: must be "doublestar"/],
    [(h) => (h.algorithm = "and"), /algorithm: must be "or"/],
    [(h) => (h.rules[0].action = "immutable"), /rules\[0\]\.action: must be "retain"/],
    [(h) => (h.rules[1] = { ...h.rules[0], id: 2 }), /rules\[1\]: duplicates rules\[0\]/],
    [(h) => (h.rules[0].colour = "red"), /rules\[0\]: unknown field "colour"/],
    [(h) => (h.rules[1].tag_selectors = []), /rules\[1\]\.tag_selectors: is required/],
  ];
  for (const [mutate, message] of cases) {
    const h = await harborJson();
    mutate(h);
    assert.throws(() => importHarborPolicy(h), (err: unknown) => err instanceof PolicyValidationError && message.test(err.message), String(message));
  }
});

test("format detection: Harbor JSON by algorithm/trigger/scope_selectors, ebb JSON otherwise", async () => {
  assert.equal(isHarborPolicy(await harborJson()), true);
  assert.equal(isHarborPolicy(JSON.parse(await readFile("test/fixtures/retention/ebb_policy.json", "utf8"))), false);
  assert.equal(parseAnyPolicy({ name: "x", rules: [] }).name, "x");
});
