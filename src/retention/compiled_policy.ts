// A policy with every pattern compiled once, ready to evaluate many repositories.
import type { Policy, Rule } from "./policy_schema.js";
import { compilePattern, type PatternMatcher } from "./pattern_matcher.js";
import { splitRepository } from "./repository_name.js";
import { ruleLabel } from "./templates.js";

export interface CompiledTagSelector {
  excludes: boolean;
  untagged: boolean;
  matcher: PatternMatcher;
}

export interface CompiledRepositorySelector {
  excludes: boolean;
  matcher: PatternMatcher;
}

export interface CompiledRule {
  /** index in policy.rules (reasons and decision rows refer to it) */
  index: number;
  rule: Rule;
  label: string;
  tagSelectors: readonly CompiledTagSelector[];
  repositorySelectors: readonly CompiledRepositorySelector[];
}

export interface CompiledProtection {
  index: number;
  tag: PatternMatcher;
  repositorySelectors: readonly CompiledRepositorySelector[];
}

export interface CompiledPolicy {
  policy: Policy;
  /** enabled rules only */
  rules: readonly CompiledRule[];
  projects: readonly PatternMatcher[];
  scopeRepositories: readonly CompiledRepositorySelector[];
  protections: readonly CompiledProtection[];
}

function compileRepositorySelectors(
  selectors: readonly { kind: "glob" | "regex"; decoration: "matches" | "excludes"; pattern: string }[],
): CompiledRepositorySelector[] {
  return selectors.map((s) => ({ excludes: s.decoration === "excludes", matcher: compilePattern(s) }));
}

/** Compiles a policy returned by parsePolicy/importHarborPolicy (patterns already validated). */
export function compilePolicy(policy: Policy): CompiledPolicy {
  const rules: CompiledRule[] = [];
  policy.rules.forEach((rule, index) => {
    if (rule.disabled) return;
    rules.push({
      index,
      rule,
      label: ruleLabel(rule, index),
      tagSelectors: rule.tag_selectors.map((s) => ({
        excludes: s.decoration === "excludes",
        // Harbor: untagged defaults to true for "matches", false for "excludes"
        untagged: s.untagged ?? s.decoration === "matches",
        matcher: compilePattern(s),
      })),
      repositorySelectors: compileRepositorySelectors(rule.repository_selectors),
    });
  });
  return {
    policy,
    rules,
    projects: policy.scope.projects.map((p) => compilePattern(p)),
    scopeRepositories: compileRepositorySelectors(policy.scope.repositories),
    protections: policy.protected.map((p, index) => ({
      index,
      tag: compilePattern(p.tag),
      repositorySelectors: compileRepositorySelectors(p.repository_selectors),
    })),
  };
}

/** All selectors must pass (Harbor ANDs the selectors of one rule). */
export function repositorySelected(selectors: readonly CompiledRepositorySelector[], path: string): boolean {
  for (const s of selectors) {
    if (s.matcher.test(path) === s.excludes) return false;
  }
  return true;
}

/** Harbor's doublestar tag selector on one artifact's (or one tag's) tag names. */
export function tagSelected(selector: CompiledTagSelector, tagNames: readonly string[]): boolean {
  if (tagNames.length === 0) return selector.excludes ? !selector.untagged : selector.untagged;
  for (const tag of tagNames) {
    // matches: any tag matches; excludes: any tag does not match
    if (selector.matcher.test(tag) !== selector.excludes) return true;
  }
  return false;
}

export interface RepositoryScope {
  inScope: boolean;
  /** enabled rules whose repository selectors select this repository */
  rules: readonly CompiledRule[];
  protections: readonly CompiledProtection[];
}

export function scopeOf(compiled: CompiledPolicy, repository: string): RepositoryScope {
  const { project, path } = splitRepository(repository);
  const projectOk = compiled.projects.length === 0 || compiled.projects.some((m) => m.test(project));
  if (!projectOk || !repositorySelected(compiled.scopeRepositories, path)) {
    return { inScope: false, rules: [], protections: [] };
  }
  return {
    inScope: true,
    rules: compiled.rules.filter((r) => repositorySelected(r.repositorySelectors, path)),
    protections: compiled.protections.filter((p) => repositorySelected(p.repositorySelectors, path)),
  };
}
