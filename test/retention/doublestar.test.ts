// Tag and repository globs must mean what they mean in Harbor (bmatcuk/doublestar v1), or a
// policy migrated from Harbor would keep or delete different images.
import { test } from "node:test";
import assert from "node:assert/strict";
import { compilePattern } from "../../src/retention/pattern_matcher.js";

const glob = (pattern: string) => compilePattern({ kind: "glob", pattern });

const table: [string, string, boolean][] = [
  ["**", "a/b/c", true],
  ["**", "latest", true],
  ["*", "abc", true],
  ["*", "a/b", false],
  ["a/*", "a/b", true],
  ["a/*", "a/b/c", false],
  ["a/**", "a/b/c", true],
  ["a/**", "a", false],
  ["**/c", "c", true],
  ["**/c", "a/b/c", true],
  ["**/c", "a/bc", false],
  ["a/**/c", "a/c", true],
  ["a/**/c", "a/b/x/c", true],
  ["a/**/c", "a/b/x/d", false],
  ["{latest,4.*}", "latest", true],
  ["{latest,4.*}", "4.0", true],
  ["{latest,4.*}", "5.0", false],
  ["{a,b*}c", "bxc", true],
  ["*.{js,ts}", "a.ts", true],
  ["4.*", "4.0.1", true],
  ["4.**", "4.0", true],
  ["4.**", "4.0/x", false],
  ["v?", "v1", true],
  ["v?", "v12", false],
  ["v?", "v/", false],
  ["[a-c]x", "bx", true],
  ["[a-c]x", "dx", false],
  ["[!a-c]x", "dx", true],
  ["[!a-c]x", "ax", false],
  ["[^a]x", "bx", true],
  ["[^a]x", "/x", false],
  ["\\*", "*", true],
  ["\\*", "a", false],
  ["a\\{b", "a{b", true],
  ["a.b", "axb", false],
  ["*", ".hidden", true],
  ["**", ".a/.b", true],
  // bash/extglob syntax is literal in doublestar
  ["(a|b)", "(a|b)", true],
  ["(a|b)", "a", false],
  ["!foo", "!foo", true],
  ["!foo", "bar", false],
  ["+(a)", "+(a)", true],
  ["+(a)", "a", false],
  ["a+", "aa", false],
  ["v1.0$", "v1.0$", true],
  ["release-*", "release-2024", true],
  ["release-*", "prerelease-2024", false],
];

test("doublestar table: ** crosses /, * does not, {a,b}, ?, classes, escapes, bash syntax literal", () => {
  for (const [pattern, value, expected] of table) {
    assert.equal(glob(pattern).test(value), expected, `${pattern} vs ${value}`);
  }
});

test("malformed globs are refused when the policy is loaded, not at deletion time", () => {
  for (const bad of ["[", "[]", "{a", "a\\", "[-a]", "a\\/b", "{a,{b}}"]) {
    assert.throws(() => glob(bad), Error, bad);
  }
});

test("a pathological glob still matches in bounded time", () => {
  const started = Date.now();
  const m = glob("*a*a*a*a*a*a*a*a*a*a*a*b");
  assert.equal(m.test("a".repeat(120)), false);
  assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
});
