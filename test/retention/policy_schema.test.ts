// A bad policy is refused before it can delete anything, with a message naming the field.
import { test } from "node:test";
import assert from "node:assert/strict";
import { PolicyValidationError } from "../../src/retention/policy_error.js";
import { parsePolicy } from "../../src/retention/policy_schema.js";

function refusal(input: unknown): string {
  try {
    parsePolicy(input);
  } catch (err) {
    assert.ok(err instanceof PolicyValidationError, String(err));
    return err.message;
  }
  assert.fail("policy was accepted");
}

const rule = (template: string, params: unknown, extra: object = {}) => ({ template, params, ...extra });

test("counts and days: negative, too large, float, wrong type, missing", () => {
  assert.match(refusal({ name: "p", rules: [rule("latestPushedK", { latestPushedK: -1 })] }), /rules\[0\]\.params\.latestPushedK: is less than zero/);
  assert.match(refusal({ name: "p", rules: [rule("latestPushedK", { latestPushedK: 32767 })] }), /rules\[0\]\.params\.latestPushedK: is too large/);
  assert.match(refusal({ name: "p", rules: [rule("latestPulledN", { latestPulledN: 2.5 })] }), /rules\[0\]\.params\.latestPulledN: must be an integer/);
  assert.match(refusal({ name: "p", rules: [rule("nDaysSinceLastPush", { nDaysSinceLastPush: 20190905 })] }), /rules\[0\]\.params\.nDaysSinceLastPush: is too large/);
  assert.match(refusal({ name: "p", rules: [rule("nDaysSinceLastPull", { nDaysSinceLastPull: "7" })] }), /rules\[0\]\.params\.nDaysSinceLastPull: must be a number/);
  assert.match(refusal({ name: "p", rules: [rule("latestActiveK", {})] }), /rules\[0\]\.params\.latestActiveK: is required/);
  assert.match(refusal({ name: "p", rules: [rule("latestPerSemverLine", { keep: 3, line: "patch" })] }), /rules\[0\]\.params\.line: must be "major" or "minor"/);
  // the bounds themselves are accepted
  parsePolicy({ name: "p", rules: [rule("latestPushedK", { latestPushedK: 32766 }), rule("nDaysSinceLastPull", { nDaysSinceLastPull: 20190904 }), rule("latestPushedK", { latestPushedK: 0 }, { disabled: true, tag_selectors: [{ decoration: "matches", pattern: "x" }] })] });
});

test("unknown template, unknown fields, empty patterns, bad decoration", () => {
  assert.match(refusal({ name: "p", rules: [rule("lastXDays", { lastXDays: 1 })] }), /rules\[0\]\.template: must be one of latestPushedK/);
  assert.match(refusal({ name: "p", rules: [rule("always", {}, { colour: "red" })] }), /rules\[0\]: unknown field "colour"/);
  assert.match(refusal({ name: "p", rules: [rule("latestPushedK", { latestPushedK: 1, k: 2 })] }), /rules\[0\]\.params: unknown field "k"/);
  assert.match(refusal({ name: "p", extra: 1, rules: [] }), /^invalid policy: unknown field "extra"/);
  assert.match(refusal({ name: "p", rules: [rule("always", {}, { tag_selectors: [{ decoration: "matches", pattern: "" }] })] }), /rules\[0\]\.tag_selectors\[0\]\.pattern: must not be empty/);
  assert.match(refusal({ name: "p", rules: [rule("always", {}, { repository_selectors: [{ decoration: "repoMatches", pattern: "**" }] })] }), /rules\[0\]\.repository_selectors\[0\]\.decoration: must be "matches" or "excludes"/);
  assert.match(refusal({ name: "p", rules: [rule("always", {}, { tag_selectors: [{ decoration: "matches", pattern: "[" }] })] }), /rules\[0\]\.tag_selectors\[0\]\.pattern: unclosed \[/);
  assert.match(refusal({ name: "p", rules: [rule("always", {}, { tag_selectors: [{ kind: "regex", decoration: "matches", pattern: "(a+)+$" }] })] }), /rules\[0\]\.tag_selectors\[0\]\.pattern: has a repeated group/);
  assert.match(refusal({ name: "p", protected: [{ tag: { pattern: "" } }], rules: [] }), /protected\[0\]\.tag\.pattern: must not be empty/);
  assert.match(refusal({ name: "p", deletion_unit: "tag", rules: [] }), /deletion_unit: must be "artifact" or "untag"/);
  assert.match(refusal({ name: "p", caps: { max_fraction: 1.5 }, rules: [] }), /caps\.max_fraction: is greater than 1/);
  assert.match(refusal({ name: "p", caps: { max_deletions: -3 }, rules: [] }), /caps\.max_deletions: is less than zero/);
});

test("more than 15 rules and duplicate rules are refused", () => {
  const many = Array.from({ length: 16 }, (_, i) => rule("latestPushedK", { latestPushedK: i }));
  assert.match(refusal({ name: "p", rules: many }), /rules: has more than 15 rules/);
  parsePolicy({ name: "p", rules: many.slice(0, 15) });
  const a = rule("latestPushedK", { latestPushedK: 3 }, { tag_selectors: [{ decoration: "matches", pattern: "v*" }] });
  // same rule written with defaults spelled out and a different disabled flag is still the same rule
  const b = rule("latestPushedK", { latestPushedK: 3 }, { disabled: true, repository_selectors: [], tag_selectors: [{ kind: "glob", pattern: "v*", decoration: "matches" }] });
  assert.match(refusal({ name: "p", rules: [rule("always", {}), a, b] }), /rules\[2\]: duplicates rules\[1\]/);
});

test("defaults: glob kind, artifact deletion unit, no caps, empty scope", () => {
  const p = parsePolicy({ name: "p", rules: [rule("always", undefined, { tag_selectors: [{ decoration: "excludes", pattern: "dev-*" }] })] });
  assert.equal(p.deletion_unit, "artifact");
  assert.deepEqual(p.caps, {});
  assert.deepEqual(p.scope, { projects: [], repositories: [] });
  assert.equal(p.rules[0]!.tag_selectors[0]!.kind, "glob");
  assert.equal(p.rules[0]!.disabled, false);
});
