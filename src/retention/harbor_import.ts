// Harbor's retention policy JSON (GET /api/v2.0/retentions/{id}) converted to ebb's policy.
//
// Harbor shape (src/pkg/retention/policy/models.go, rule/models.go):
// { "id": 1, "algorithm": "or",
//   "rules": [{ "id": 1, "priority": 1, "disabled": false, "action": "retain",
//               "template": "latestPushedK", "params": {"latestPushedK": 10},
//               "tag_selectors": [{"kind":"doublestar","decoration":"matches","pattern":"**",
//                                  "extras":"{\"untagged\":true}"}],
//               "scope_selectors": {"repository": [{"kind":"doublestar",
//                                  "decoration":"repoMatches","pattern":"**"}]} }],
//   "trigger": {"kind":"Schedule","settings":{"cron":"0 0 0 * * *"},"references":{}},
//   "scope": {"level":"project","ref":1} }
//
// Mapping: doublestar -> glob; repoMatches/repoExcludes -> matches/excludes on the repository
// path without the project (same as Harbor); extras.untagged -> untagged (an absent extras keeps
// Harbor's default, unparsable extras is refused rather than silently defaulted); params keep
// their Harbor key (= template id). Harbor's scope is a numeric project id: pass `project` to
// pin the policy to that project's name, otherwise the policy applies to every project it is
// run against. The schedule is returned as-is (Harbor cron has 6 fields, seconds first).
// Errors use Harbor's paths, e.g. "rules[0].params.latestPushedK: is less than zero".
import { z } from "zod";
import { PolicyValidationError, issuesFromZod, type FieldProblem } from "./policy_error.js";
import { parsePolicy, type Policy, type PolicyInput } from "./policy_schema.js";

const harborSelector = z.strictObject({
  kind: z.literal("doublestar", { error: 'must be "doublestar"' }),
  decoration: z.string({ error: "is required" }),
  pattern: z.string({ error: "is required" }),
  extras: z.string().optional(),
});

const harborRule = z.strictObject({
  id: z.number().optional(),
  priority: z.number().optional(),
  disabled: z.boolean().default(false),
  action: z.literal("retain", { error: 'must be "retain"' }),
  template: z.string({ error: "is required" }),
  params: z.record(z.string(), z.unknown()).nullable().optional(),
  tag_selectors: z.array(harborSelector).nullable().optional(),
  scope_selectors: z.record(z.string(), z.array(harborSelector).nullable()).nullable().optional(),
});

export const HarborPolicySchema = z.strictObject({
  id: z.number().optional(),
  algorithm: z.literal("or", { error: 'must be "or"' }),
  rules: z.array(harborRule).nullable().default([]),
  trigger: z
    .strictObject({
      kind: z.string(),
      settings: z.record(z.string(), z.unknown()).nullable().optional(),
      references: z.unknown().optional(),
    })
    .nullable()
    .optional(),
  scope: z
    .strictObject({ level: z.literal("project", { error: 'must be "project"' }), ref: z.number() })
    .nullable()
    .optional(),
});

export interface HarborImportOptions {
  /** ebb policy name; default "harbor-project-<ref>" */
  name?: string;
  /** the Harbor project's name (Harbor's scope is a numeric id ebb cannot resolve) */
  project?: string;
}

export interface HarborImport {
  policy: Policy;
  /** Harbor's trigger cron (6 fields, seconds first), null when manual / absent */
  cron: string | null;
  harbor_project_id: number | null;
}

/** Heuristic: Harbor's JSON has "algorithm", or rules with "scope_selectors"/"action". */
export function isHarborPolicy(json: unknown): boolean {
  if (!json || typeof json !== "object" || Array.isArray(json)) return false;
  const o = json as Record<string, unknown>;
  if ("algorithm" in o || "trigger" in o) return true;
  const rules = o["rules"];
  return (
    Array.isArray(rules) &&
    rules.some((r) => r && typeof r === "object" && ("scope_selectors" in r || "action" in r))
  );
}

function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]{}\\,]/g, "\\$&");
}

function parseParam(value: unknown): unknown {
  // Harbor accepts JSON numbers and numeric strings for counts
  if (typeof value === "string" && /^-?\d+$/.test(value.trim())) return Number(value.trim());
  return value;
}

export function importHarborPolicy(json: unknown, options: HarborImportOptions = {}): HarborImport {
  const parsed = HarborPolicySchema.safeParse(json);
  if (!parsed.success) throw new PolicyValidationError(issuesFromZod(parsed.error.issues), "invalid Harbor policy");
  const h = parsed.data;
  const problems: FieldProblem[] = [];

  const rules = (h.rules ?? []).map((r, i) => {
    // Harbor's API requires tag selectors, and its processor skips a rule without any
    if (!r.tag_selectors || r.tag_selectors.length === 0) {
      problems.push({ path: `rules[${i}].tag_selectors`, message: "is required (Harbor needs at least one tag selector)" });
    }
    const tagSelectors = (r.tag_selectors ?? []).map((s, j) => {
      const path = `rules[${i}].tag_selectors[${j}]`;
      if (s.decoration !== "matches" && s.decoration !== "excludes") {
        problems.push({ path: `${path}.decoration`, message: 'must be "matches" or "excludes"' });
      }
      let untagged: boolean | undefined;
      if (s.extras !== undefined && s.extras !== "") {
        try {
          const extras = JSON.parse(s.extras) as unknown;
          if (extras && typeof extras === "object" && "untagged" in extras) {
            const value = (extras as { untagged: unknown }).untagged;
            if (typeof value !== "boolean") problems.push({ path: `${path}.extras`, message: "untagged must be true or false" });
            else untagged = value;
          }
        } catch {
          problems.push({ path: `${path}.extras`, message: "is not valid JSON" });
        }
      }
      return {
        kind: "glob" as const,
        decoration: s.decoration as "matches" | "excludes",
        pattern: s.pattern,
        ...(untagged !== undefined ? { untagged } : {}),
      };
    });
    const scopeSelectors = r.scope_selectors ?? {};
    for (const key of Object.keys(scopeSelectors)) {
      if (key !== "repository") problems.push({ path: `rules[${i}].scope_selectors.${key}`, message: "is not supported (only repository)" });
    }
    const repositorySelectors = (scopeSelectors["repository"] ?? []).map((s, j) => {
      if (s.decoration !== "repoMatches" && s.decoration !== "repoExcludes") {
        problems.push({
          path: `rules[${i}].scope_selectors.repository[${j}].decoration`,
          message: 'must be "repoMatches" or "repoExcludes"',
        });
      }
      return {
        kind: "glob" as const,
        decoration: s.decoration === "repoExcludes" ? ("excludes" as const) : ("matches" as const),
        pattern: s.pattern,
      };
    });
    const params = Object.fromEntries(Object.entries(r.params ?? {}).map(([k, v]) => [k, parseParam(v)]));
    return {
      template: r.template,
      params,
      tag_selectors: tagSelectors,
      repository_selectors: repositorySelectors,
      disabled: r.disabled,
    };
  });
  if (problems.length > 0) throw new PolicyValidationError(problems, "invalid Harbor policy");

  const ref = h.scope?.ref ?? null;
  const input = {
    name: options.name ?? (ref !== null ? `harbor-project-${ref}` : "harbor-import"),
    scope: { projects: options.project !== undefined ? [{ kind: "glob", pattern: escapeGlob(options.project) }] : [] },
    deletion_unit: "artifact",
    rules,
  } as unknown as PolicyInput;

  let policy: Policy;
  try {
    policy = parsePolicy(input);
  } catch (err) {
    if (err instanceof PolicyValidationError) {
      // report in Harbor's vocabulary
      const mapped = err.problems.map((p) => ({
        path: p.path.replace(/\.repository_selectors\[/, ".scope_selectors.repository["),
        message: p.message,
      }));
      throw new PolicyValidationError(mapped, "invalid Harbor policy");
    }
    throw err;
  }
  const cron = h.trigger?.kind === "Schedule" ? h.trigger.settings?.["cron"] : undefined;
  return { policy, cron: typeof cron === "string" && cron !== "" ? cron : null, harbor_project_id: ref };
}

/** ebb JSON or Harbor JSON, detected by shape. Throws PolicyValidationError. */
export function parseAnyPolicy(json: unknown, options: HarborImportOptions = {}): Policy {
  return isHarborPolicy(json) ? importHarborPolicy(json, options).policy : parsePolicy(json);
}
