// The policy every retention benchmark evaluates: the same mix as the 1M-candidate
// performance test (count rule, pull-age rule on release tags, semver lines, a regex keep,
// a protected tag, a fraction cap), so each template family costs what it costs.
import { compilePolicy, type CompiledPolicy } from "../../src/retention/compiled_policy.js";
import { parsePolicy, type PolicyInput } from "../../src/retention/policy_schema.js";

export const BENCH_POLICY: PolicyInput = {
  name: "bench",
  caps: { max_fraction: 0.95 },
  protected: [{ tag: { pattern: "stable" } }],
  rules: [
    { template: "latestPushedK", params: { latestPushedK: 10 }, tag_selectors: [{ decoration: "matches", pattern: "**" }] },
    { template: "nDaysSinceLastPull", params: { nDaysSinceLastPull: 7 }, tag_selectors: [{ decoration: "matches", pattern: "release-*" }] },
    { template: "latestPerSemverLine", params: { keep: 2, line: "minor" }, repository_selectors: [{ decoration: "matches", pattern: "**" }] },
    { template: "always", tag_selectors: [{ kind: "regex", decoration: "matches", pattern: "v1\\.0\\.\\d+" }] },
  ],
};

export function compiledBenchPolicy(): CompiledPolicy {
  return compilePolicy(parsePolicy(BENCH_POLICY));
}
