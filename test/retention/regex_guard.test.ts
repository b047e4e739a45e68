// Regex selectors are user input running inside the worker: a catastrophic pattern must be
// refused up front, and one that slips through must not hang the evaluation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { compilePattern } from "../../src/retention/pattern_matcher.js";
import { MAX_REGEX_LENGTH, regexSafetyProblem } from "../../src/retention/regex_guard.js";

test("ordinary regexes are accepted and anchored to the whole tag", () => {
  for (const ok of ["v\\d+\\.\\d+\\.\\d+", "(foo|bar)?-x", "release-.*", "[a-z]+-(dev|prod)", "sha-[0-9a-f]{7,40}"]) {
    assert.equal(regexSafetyProblem(ok), null, ok);
  }
  const m = compilePattern({ kind: "regex", pattern: "v1" });
  assert.equal(m.test("v1"), true);
  assert.equal(m.test("v10"), false, "anchored: must match the whole tag");
  assert.equal(m.test("xv1"), false);
  const alt = compilePattern({ kind: "regex", pattern: "a|b" });
  assert.equal(alt.test("ab"), false, "alternation is anchored as a whole");
});

test("nested quantifiers, quantified alternations, backreferences, lookarounds and long patterns are refused", () => {
  const refused: [string, RegExp][] = [
    ["(a+)+", /repeated group/],
    ["(a|aa)*", /repeated group/],
    ["(\\w+\\s?){3,}", /repeated group/],
    ["((ab)*c)+", /repeated group/],
    ["(?:x*)*", /repeated group/],
    ["(a)\\1", /backreference/],
    ["(?<n>a)\\k<n>", /backreference/],
    ["(?=a)a", /lookaround/],
    ["a(?!b)", /lookaround/],
    ["(?<=a)b", /lookaround/],
    ["x".repeat(MAX_REGEX_LENGTH + 1), /longer than/],
    ["(", /not a valid regular expression/],
  ];
  for (const [pattern, why] of refused) {
    const problem = regexSafetyProblem(pattern);
    assert.ok(problem && why.test(problem), `${pattern}: ${problem}`);
    assert.throws(() => compilePattern({ kind: "regex", pattern }));
  }
});

test("a polynomial regex that passes the structural check still evaluates in bounded time", () => {
  const pattern = ".*a.*a.*a.*a.*a.*a.*a.*a.*a.*a.*b";
  assert.equal(regexSafetyProblem(pattern), null);
  const m = compilePattern({ kind: "regex", pattern });
  const started = Date.now();
  assert.equal(m.test("a".repeat(128)), false);
  assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
});
