// Random policies and catalogs for property tests of the retention engine (fast-check), and
// a naive reference implementation of each rule, independent of the engine's own code:
// test/retention/properties.test.ts runs them through the pure evaluator,
// test/retention_db/properties_db.test.ts through the database path the worker uses.
import fc from "fast-check";
import type { RepositoryCandidate } from "../../../src/retention/candidate.js";
import { parsePolicy, type Policy } from "../../../src/retention/policy_schema.js";
import { DAY, NOW } from "./catalog.js";

// patterns with an obviously-correct reference matcher, independent of the glob compiler
export const PATTERNS: Record<string, (s: string) => boolean> = {
  "**": () => true,
  "*": (s) => !s.includes("/"),
  "v*": (s) => s.startsWith("v") && !s.includes("/"),
  "dev-?": (s) => /^dev-[^/]$/.test(s),
  "{latest,rc}": (s) => s === "latest" || s === "rc",
  "v1": (s) => s === "v1",
  "a": (s) => s === "a",
  "b": (s) => s === "b",
  "c/**": (s) => s.startsWith("c/"),
};
export const TAG_PATTERNS = ["**", "*", "v*", "dev-?", "{latest,rc}", "v1"];
export const REPO_PATTERNS = ["**", "a", "b", "c/**"];
export const REPOS = ["p/a", "p/b", "p/c/d"];
export const TAG_POOL = ["v1", "v2", "v1.0.0", "v1.0.1", "v1.1.0", "latest", "dev-1", "dev-2", "rc"];

export const tagSelectorArb = fc.record({
  decoration: fc.constantFrom("matches", "excludes"),
  pattern: fc.constantFrom(...TAG_PATTERNS),
  untagged: fc.option(fc.boolean(), { nil: undefined }),
});
export const repoSelectorArb = fc.record({ decoration: fc.constantFrom("matches", "excludes"), pattern: fc.constantFrom(...REPO_PATTERNS) });
const count = fc.integer({ min: 0, max: 6 });
export const templateArb = fc.oneof(
  count.map((k) => ({ template: "latestPushedK", params: { latestPushedK: k } })),
  count.map((k) => ({ template: "latestPulledN", params: { latestPulledN: k } })),
  count.map((k) => ({ template: "latestActiveK", params: { latestActiveK: k } })),
  fc.integer({ min: 0, max: 25 }).map((n) => ({ template: "nDaysSinceLastPush", params: { nDaysSinceLastPush: n } })),
  fc.integer({ min: 0, max: 25 }).map((n) => ({ template: "nDaysSinceLastPull", params: { nDaysSinceLastPull: n } })),
  fc.constant({ template: "always", params: {} }),
  fc.record({ keep: fc.integer({ min: 0, max: 3 }), line: fc.constantFrom("major", "minor") }).map((params) => ({ template: "latestPerSemverLine", params })),
);
export const ruleArb = fc.record({
  t: templateArb,
  tag_selectors: fc.array(tagSelectorArb, { maxLength: 2 }),
  repository_selectors: fc.array(repoSelectorArb, { maxLength: 1 }),
  disabled: fc.integer({ min: 0, max: 9 }).map((n) => n < 2),
});
/** Random valid policies; `scope` gives the policy's scope (default: none, every repository). */
export function policyArbWith(scope: fc.Arbitrary<Record<string, unknown> | undefined> = fc.constant(undefined)): fc.Arbitrary<Policy> {
  return fc
    .record({
      scope,
      rules: fc.array(ruleArb, { minLength: 0, maxLength: 4 }),
      deletion_unit: fc.constantFrom("artifact", "artifact", "untag"),
      protect: fc.boolean(),
      caps: fc.option(fc.record({ max_deletions: fc.integer({ min: 0, max: 8 }) }), { nil: undefined }),
    })
    .map(({ scope, rules, deletion_unit, protect, caps }) => {
      const seen = new Set<string>();
      const unique = rules
        .map((r) => ({ ...r.t, tag_selectors: r.tag_selectors, repository_selectors: r.repository_selectors, disabled: r.disabled }))
        .filter((r) => {
          const key = JSON.stringify({ ...r, disabled: undefined });
          if (seen.has(key)) return false;
          seen.add(key);
          return true;
        });
      return parsePolicy({
        name: "random",
        ...(scope ? { scope } : {}),
        deletion_unit,
        rules: unique,
        protected: protect ? [{ tag: { pattern: "latest" } }] : [],
        ...(caps ? { caps } : {}),
      });
    });
}
export const policyArb = policyArbWith();

export const timeArb = fc.option(fc.integer({ min: 0, max: 20 * 24 }).map((h) => NOW - h * 3_600_000), { nil: null, freq: 4 });
export const artifactArb = fc.record({
  tags: fc.subarray(TAG_POOL, { maxLength: 2 }),
  // a tag's own push (a re-tag when later than the artifact's push)
  tagPushed: fc.tuple(timeArb, timeArb),
  pushed: timeArb,
  pulled: timeArb,
  graph: fc.constantFrom("none", "none", "none", "index", "referrer", "attachment"),
  pick: fc.nat(),
});

/** cosign's attachment tag for a digest: sha256-<hex>.sig */
export function attachmentTagOf(digest: string, kind: "sig" | "att" | "sbom" = "sig"): string {
  return `${digest.replace(":", "-")}.${kind}`;
}
const ATTACHMENT = /^sha256-([0-9a-f]{64})\.(sig|att|sbom)$/;
/** the subject an attachment tag names, else null (independent of the engine's parser) */
export function attachmentSubject(tag: string): string | null {
  const m = ATTACHMENT.exec(tag);
  return m ? `sha256:${m[1]}` : null;
}
/** Random catalogs over the given repositories (several entries may name the same one). */
export function catalogArbOver(names: readonly string[]): fc.Arbitrary<RepositoryCandidate[]> {
  return fc.array(fc.record({ repo: fc.constantFrom(...names), artifacts: fc.array(artifactArb, { maxLength: 10 }) }), { maxLength: 3 }).map((repos) => {
    const out: RepositoryCandidate[] = [];
    repos.forEach(({ repo, artifacts }, r) => {
      const used = new Set(out.filter((c) => c.repository === repo).flatMap((c) => c.tags.map((t) => t.name)));
      const start = out.filter((c) => c.repository === repo).length;
      const mine: RepositoryCandidate[] = [];
      artifacts.forEach((a, i) => {
        const tags = a.tags.filter((t) => !used.has(t));
        tags.forEach((t) => used.add(t));
        const c: RepositoryCandidate = {
          repository: repo,
          // 64 hex digits, so that cosign-style attachment tags can name it
          digest: `sha256:${r}${String(start + i).padStart(63, "0")}`,
          tags: tags.map((name, k) => ({ name, pushed_at: a.tagPushed[k] ?? null, pulled_at: null })),
          pushed_at: a.pushed,
          pulled_at: a.pulled,
        };
        const earlier = mine.length > 0 ? mine[a.pick % mine.length]! : undefined;
        if (a.graph === "referrer" && earlier) c.subject = earlier.digest;
        if (a.graph === "index" && earlier) c.children = [earlier.digest];
        // an attachment of an earlier artifact (or of a digest not in the repository); with
        // an odd pick it keeps its ordinary tags too
        if (a.graph === "attachment") {
          const subject = earlier && a.pick % 3 !== 0 ? earlier.digest : `sha256:${"f".repeat(64)}`;
          const tag = { name: attachmentTagOf(subject, a.pick % 2 === 0 ? "sig" : "att"), pushed_at: a.tagPushed[0], pulled_at: null };
          if (!used.has(tag.name)) {
            used.add(tag.name);
            c.tags = a.pick % 2 === 1 ? [...c.tags, tag] : [tag];
          }
        }
        mine.push(c);
      });
      out.push(...mine);
    });
    return out;
  });
}
export const catalogArb = catalogArbOver(REPOS);

// ---- the naive reference ----

export function repoPath(repository: string): string {
  return repository.slice(repository.indexOf("/") + 1);
}

export function ruleSelectsRepo(rule: Policy["rules"][number], repository: string): boolean {
  return rule.repository_selectors.every((s) => PATTERNS[s.pattern]!(repoPath(repository)) === (s.decoration === "matches"));
}

export function tagSelected(s: Policy["rules"][number]["tag_selectors"][number], tags: string[]): boolean {
  const untagged = s.untagged ?? s.decoration === "matches";
  if (tags.length === 0) return s.decoration === "matches" ? untagged : !untagged;
  const m = PATTERNS[s.pattern]!;
  return s.decoration === "matches" ? tags.some(m) : tags.some((t) => !m(t));
}

export function semverKey(tag: string): number[] | null {
  const m = /^v?(\d+)\.(\d+)\.(\d+)$/.exec(tag);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

/** Digests one rule retains in one repository, computed naively. */
export function referenceRetained(rule: Policy["rules"][number], repoCandidates: RepositoryCandidate[], now: number): Set<string> {
  const digests = new Set(repoCandidates.map((c) => c.digest));
  const childDigests = new Set(repoCandidates.flatMap((c) => c.children ?? []));
  const units = repoCandidates
    .filter((c) => !(c.subject && digests.has(c.subject)) && !(c.tags.length === 0 && childDigests.has(c.digest)))
    // an artifact whose tags are all attachment tags is an attachment, not a candidate
    .filter((c) => c.subject || c.tags.length === 0 || c.tags.some((t) => attachmentSubject(t.name) === null))
    .map((c) => {
      const tagPushes = c.tags.map((t) => t.pushed_at).filter((t): t is number => t !== null);
      return {
        digest: c.digest,
        tags: c.tags.map((t) => t.name).filter((t) => attachmentSubject(t) === null),
        // count rules: the artifact's own push (else its earliest tag push)
        own: c.pushed_at ?? (tagPushes.length > 0 ? Math.min(...tagPushes) : -Infinity),
        // nDaysSinceLastPush: the last push of the artifact or any tag
        pushed: Math.max(c.pushed_at ?? -Infinity, ...tagPushes),
        pulled: c.pulled_at ?? -Infinity,
      };
    })
    .filter((u) => rule.tag_selectors.every((s) => tagSelected(s, u.tags)));
  const top = (k: number, time: (u: (typeof units)[number]) => number) =>
    [...units].sort((a, b) => time(b) - time(a) || (a.digest < b.digest ? -1 : 1) || 0).slice(0, k).map((u) => u.digest);
  switch (rule.template) {
    case "latestPushedK":
      return new Set(top(rule.params.latestPushedK, (u) => (u.own === -Infinity ? -1e300 : u.own)));
    case "latestPulledN":
      return new Set(top(rule.params.latestPulledN, (u) => (u.pulled === -Infinity ? -1e300 : u.pulled)));
    case "latestActiveK":
      return new Set(top(rule.params.latestActiveK, (u) => Math.max(u.own, u.pulled, -1e300)));
    case "nDaysSinceLastPush":
      return new Set(units.filter((u) => u.pushed >= now - rule.params.nDaysSinceLastPush * DAY).map((u) => u.digest));
    case "nDaysSinceLastPull":
      return new Set(units.filter((u) => u.pulled >= now - rule.params.nDaysSinceLastPull * DAY).map((u) => u.digest));
    case "always":
      return new Set(units.map((u) => u.digest));
    case "latestPerSemverLine": {
      const lines = new Map<string, { digest: string; v: number[] }[]>();
      for (const u of units) {
        for (const t of u.tags) {
          const v = semverKey(t);
          if (!v) continue;
          const line = rule.params.line === "major" ? `${v[0]}` : `${v[0]}.${v[1]}`;
          const list = lines.get(line) ?? [];
          const existing = list.find((e) => e.digest === u.digest);
          const cmp = (a: number[], b: number[]) => a[0]! - b[0]! || a[1]! - b[1]! || a[2]! - b[2]!;
          if (!existing) list.push({ digest: u.digest, v });
          else if (cmp(v, existing.v) > 0) existing.v = v;
          lines.set(line, list);
        }
      }
      const kept = new Set<string>();
      for (const list of lines.values()) {
        list.sort((a, b) => b.v[0]! - a.v[0]! || b.v[1]! - a.v[1]! || b.v[2]! - a.v[2]! || (a.digest < b.digest ? -1 : 1));
        list.slice(0, rule.params.keep).forEach((e) => kept.add(e.digest));
      }
      return kept;
    }
  }
}
