// ebb's own retention policy JSON: the schema, its types, and parsePolicy().
//
// {
//   "name": "keep-recent",
//   "scope": { "projects": [{"kind":"glob","pattern":"library"}],
//              "repositories": [{"kind":"glob","decoration":"matches","pattern":"**"}] },
//   "deletion_unit": "artifact",              // or "untag"
//   "caps": { "max_deletions": 500, "max_fraction": 0.5 },
//   "protected": [{ "tag": {"kind":"glob","pattern":"release-*"}, "repository_selectors": [] }],
//   "rules": [{ "template": "latestPushedK", "params": {"latestPushedK": 10},
//               "tag_selectors": [{"kind":"glob","decoration":"matches","pattern":"**","untagged":true}],
//               "repository_selectors": [{"kind":"glob","decoration":"matches","pattern":"**"}],
//               "disabled": false }]
// }
//
// Repository names: for "ns/name/sub" the first segment "ns" is the project (Harbor's project,
// a registry namespace) and "name/sub" is the repository path. scope.projects matches the project;
// every repository selector (scope and rule) matches the path WITHOUT the project, as Harbor does.
// A one-segment name ("alpine") has the empty project "" and the path "alpine".
import { z } from "zod";
import { PolicyValidationError, formatPath, issuesFromZod, type FieldProblem } from "./policy_error.js";
import { patternProblem } from "./pattern_matcher.js";

export const MAX_RULES = 15;
/** Harbor: 0 <= k < 32767 for the count templates. */
export const MAX_COUNT = 32766;
/** Harbor: 0 <= N <= 20190904 for the day templates. */
export const MAX_DAYS = 20190904;
export const MAX_PATTERN_LENGTH = 256;

export const TEMPLATES = [
  "latestPushedK",
  "latestPulledN",
  "nDaysSinceLastPush",
  "nDaysSinceLastPull",
  "always",
  "latestActiveK",
  "latestPerSemverLine",
] as const;
export type Template = (typeof TEMPLATES)[number];

/** zod error option: "is required" when absent, `message` when of the wrong type. */
function typeError(message: string) {
  return { error: (issue: { input?: unknown }) => (issue.input === undefined ? "is required" : message) };
}

function boundedInt(max: number) {
  return z
    .number(typeError("must be a number"))
    .int("must be an integer")
    .min(0, "is less than zero")
    .max(max, "is too large");
}

const patternText = z
  .string(typeError("must be a string"))
  .min(1, "must not be empty")
  .max(MAX_PATTERN_LENGTH, `is longer than ${MAX_PATTERN_LENGTH} characters`);

const kind = z.enum(["glob", "regex"], typeError('must be "glob" or "regex"')).default("glob");
const decoration = z.enum(["matches", "excludes"], typeError('must be "matches" or "excludes"'));

export const PatternSchema = z.strictObject({ kind, pattern: patternText });

export const TagSelectorSchema = z.strictObject({
  kind,
  decoration,
  pattern: patternText,
  /** Harbor's extras.untagged; default true for matches, false for excludes. */
  untagged: z.boolean(typeError("must be true or false")).optional(),
});

export const RepositorySelectorSchema = z.strictObject({ kind, decoration, pattern: patternText });

const ruleCommon = {
  tag_selectors: z.array(TagSelectorSchema).default([]),
  repository_selectors: z.array(RepositorySelectorSchema).default([]),
  disabled: z.boolean(typeError("must be true or false")).default(false),
};

const RuleSchema = z.discriminatedUnion(
  "template",
  [
    z.strictObject({
      template: z.literal("latestPushedK"),
      params: z.strictObject({ latestPushedK: boundedInt(MAX_COUNT) }),
      ...ruleCommon,
    }),
    z.strictObject({
      template: z.literal("latestPulledN"),
      params: z.strictObject({ latestPulledN: boundedInt(MAX_COUNT) }),
      ...ruleCommon,
    }),
    z.strictObject({
      template: z.literal("latestActiveK"),
      params: z.strictObject({ latestActiveK: boundedInt(MAX_COUNT) }),
      ...ruleCommon,
    }),
    z.strictObject({
      template: z.literal("nDaysSinceLastPush"),
      params: z.strictObject({ nDaysSinceLastPush: boundedInt(MAX_DAYS) }),
      ...ruleCommon,
    }),
    z.strictObject({
      template: z.literal("nDaysSinceLastPull"),
      params: z.strictObject({ nDaysSinceLastPull: boundedInt(MAX_DAYS) }),
      ...ruleCommon,
    }),
    z.strictObject({
      template: z.literal("always"),
      params: z.strictObject({}).default({}),
      ...ruleCommon,
    }),
    z.strictObject({
      template: z.literal("latestPerSemverLine"),
      // keep the `keep` highest versions (semver precedence) of every line; a line is all
      // versions sharing MAJOR ("major") or MAJOR.MINOR ("minor"). Prereleases are ignored
      // unless include_prereleases. Tags that are not MAJOR.MINOR.PATCH (optional leading v)
      // do not count; artifacts without such a tag are not retained by this rule.
      params: z.strictObject({
        keep: boundedInt(MAX_COUNT),
        line: z.enum(["major", "minor"], typeError('must be "major" or "minor"')),
        include_prereleases: z.boolean(typeError("must be true or false")).default(false),
      }),
      ...ruleCommon,
    }),
  ],
  typeError(`must be one of ${TEMPLATES.join(", ")}`),
);

export const PolicySchema = z.strictObject({
  name: z.string(typeError("must be a string")).min(1, "must not be empty").max(200, "is too long"),
  scope: z
    .strictObject({
      /** any-of; absent or empty = every project */
      projects: z.array(PatternSchema).default([]),
      /** all-of, on the path without the project */
      repositories: z.array(RepositorySelectorSchema).default([]),
    })
    .default({ projects: [], repositories: [] }),
  deletion_unit: z.enum(["artifact", "untag"], typeError('must be "artifact" or "untag"')).default("artifact"),
  caps: z
    .strictObject({
      /** abort a repository whose plan deletes (or untags) more artifacts than this */
      max_deletions: boundedInt(Number.MAX_SAFE_INTEGER).optional(),
      /** abort a repository whose plan deletes (or untags) more than this share of its artifacts */
      max_fraction: z
        .number(typeError("must be a number"))
        .min(0, "is less than zero")
        .max(1, "is greater than 1")
        .optional(),
    })
    .default({}),
  protected: z
    .array(
      z.strictObject({
        tag: PatternSchema,
        repository_selectors: z.array(RepositorySelectorSchema).default([]),
      }),
    )
    .default([]),
  rules: z.array(RuleSchema).max(MAX_RULES, `has more than ${MAX_RULES} rules`),
});

export type Policy = z.output<typeof PolicySchema>;
export type PolicyInput = z.input<typeof PolicySchema>;
export type Rule = Policy["rules"][number];
export type TagSelector = z.output<typeof TagSelectorSchema>;
export type RepositorySelector = z.output<typeof RepositorySelectorSchema>;

/** Everything zod cannot say: compilable patterns, duplicate rules. */
function semanticProblems(policy: Policy): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const checkPattern = (spec: { kind: "glob" | "regex"; pattern: string }, path: string) => {
    const problem = patternProblem(spec);
    if (problem) problems.push({ path, message: problem });
  };
  policy.scope.projects.forEach((p, i) => checkPattern(p, `scope.projects[${i}].pattern`));
  policy.scope.repositories.forEach((p, i) => checkPattern(p, `scope.repositories[${i}].pattern`));
  policy.protected.forEach((p, i) => {
    checkPattern(p.tag, `protected[${i}].tag.pattern`);
    p.repository_selectors.forEach((s, j) => checkPattern(s, `protected[${i}].repository_selectors[${j}].pattern`));
  });
  const seen = new Map<string, number>();
  policy.rules.forEach((rule, i) => {
    rule.tag_selectors.forEach((s, j) => checkPattern(s, `rules[${i}].tag_selectors[${j}].pattern`));
    rule.repository_selectors.forEach((s, j) => checkPattern(s, `rules[${i}].repository_selectors[${j}].pattern`));
    const key = ruleIdentity(rule);
    const first = seen.get(key);
    if (first !== undefined) problems.push({ path: `rules[${i}]`, message: `duplicates rules[${first}]` });
    else seen.set(key, i);
  });
  return problems;
}

/** Two rules that differ only in `disabled` (or in key order) are the same rule. */
function ruleIdentity(rule: Rule): string {
  const { disabled: _disabled, ...rest } = rule;
  return stableStringify(rest);
}

function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** Parses ebb policy JSON (already JSON.parse'd). Throws PolicyValidationError naming fields. */
export function parsePolicy(input: unknown): Policy {
  const nul = nulProblems(input, []);
  if (nul.length > 0) throw new PolicyValidationError(nul);
  const result = PolicySchema.safeParse(input);
  if (!result.success) throw new PolicyValidationError(issuesFromZod(result.error.issues));
  const problems = semanticProblems(result.data);
  if (problems.length > 0) throw new PolicyValidationError(problems);
  return result.data;
}

/**
 * Text holding a NUL character (\u0000) anywhere in the document, field names included:
 * PostgreSQL cannot store it in text or jsonb, so it is refused here with the field named.
 */
function nulProblems(value: unknown, path: (string | number)[], out: FieldProblem[] = []): FieldProblem[] {
  // the schema allows far less nesting than this; deeper values are refused by it anyway
  if (out.length >= 5 || path.length > 32) return out;
  if (typeof value === "string") {
    if (value.includes("\u0000")) out.push({ path: formatPath(path), message: "must not contain the NUL character (\\u0000)" });
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => nulProblems(v, [...path, i], out));
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (k.includes("\u0000")) out.push({ path: formatPath(path), message: "a field name contains the NUL character (\\u0000)" });
      nulProblems(v, [...path, k], out);
    }
  }
  return out;
}
