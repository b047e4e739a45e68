// Harbor's rule templates (plus ebb's latestPerSemverLine), over the units one rule selected.
//
// Push times: count rules (latestPushedK, latestActiveK) rank by `ownPushed`, the artifact's own
// push, so a tag added to an old build never takes a newer build's place; nDaysSinceLastPush
// uses `pushed`, the last push of the artifact or any of its tags (a re-tag there only keeps
// more, nothing else is displaced).
//
// Ties are deterministic (Harbor's sort is not): time descending, then digest ascending, then
// tag name ascending (tags only differ in deletion unit "untag"). Unknown times are -Infinity:
// they sort last and never satisfy a "days since" cut-off.
import type { Rule } from "./policy_schema.js";
import { compareSemver, parseSemver, semverLine, type SemVer } from "./semver.js";

export const DAY_MS = 24 * 60 * 60 * 1000;

/** What one rule ranks: an artifact ("artifact" unit) or one tag of it ("untag" unit). */
export interface RuleUnit {
  /** index of the artifact in the repository's candidate array */
  artifact: number;
  digest: string;
  /** tag name in "untag" mode, null for a whole artifact */
  tag: string | null;
  /** tag names the selectors look at: all tags of the artifact, or the one tag */
  tagNames: readonly string[];
  /** last push: the artifact's or any of its tags', whichever is later (nDaysSinceLastPush) */
  pushed: number;
  /** the artifact's own push, when its manifest arrived (count rules); a tag unit's own push */
  ownPushed: number;
  pulled: number;
  /** max(ownPushed, pulled), for latestActiveK */
  active: number;
}

function tieBreak(a: RuleUnit, b: RuleUnit): number {
  if (a.digest !== b.digest) return a.digest < b.digest ? -1 : 1;
  const at = a.tag ?? "";
  const bt = b.tag ?? "";
  return at < bt ? -1 : at > bt ? 1 : 0;
}

function byOwnPushedDesc(units: readonly RuleUnit[]) {
  return (x: number, y: number): number => {
    const a = units[x]!;
    const b = units[y]!;
    return a.ownPushed !== b.ownPushed ? (a.ownPushed > b.ownPushed ? -1 : 1) : tieBreak(a, b);
  };
}

function byPulledDesc(units: readonly RuleUnit[]) {
  return (x: number, y: number): number => {
    const a = units[x]!;
    const b = units[y]!;
    return a.pulled !== b.pulled ? (a.pulled > b.pulled ? -1 : 1) : tieBreak(a, b);
  };
}

function byActiveDesc(units: readonly RuleUnit[]) {
  return (x: number, y: number): number => {
    const a = units[x]!;
    const b = units[y]!;
    return a.active !== b.active ? (a.active > b.active ? -1 : 1) : tieBreak(a, b);
  };
}

function topK(selected: number[], k: number, compare: (x: number, y: number) => number): number[] {
  if (k <= 0) return [];
  if (selected.length <= k) return selected;
  selected.sort(compare);
  return selected.slice(0, k);
}

function latestPerSemverLine(
  units: readonly RuleUnit[],
  selected: readonly number[],
  keep: number,
  line: "major" | "minor",
  includePrereleases: boolean,
): number[] {
  if (keep <= 0) return [];
  // line -> unit -> best version of that unit in the line
  const lines = new Map<string, Map<number, SemVer>>();
  for (const u of selected) {
    for (const tag of units[u]!.tagNames) {
      const v = parseSemver(tag);
      if (!v || (!includePrereleases && v.prerelease.length > 0)) continue;
      const key = semverLine(v, line);
      let members = lines.get(key);
      if (!members) lines.set(key, (members = new Map()));
      const best = members.get(u);
      if (!best || compareSemver(v, best) > 0) members.set(u, v);
    }
  }
  const kept = new Set<number>();
  for (const members of lines.values()) {
    const ranked = [...members.entries()].sort(([ua, va], [ub, vb]) => {
      const c = compareSemver(vb, va);
      return c !== 0 ? c : tieBreak(units[ua]!, units[ub]!);
    });
    for (let i = 0; i < ranked.length && i < keep; i++) kept.add(ranked[i]![0]);
  }
  return [...kept];
}

/**
 * The units (indexes into `units`) that `rule` retains among `selected` (already filtered by
 * the rule's tag selectors). May reorder `selected`.
 */
export function retainedByTemplate(rule: Rule, units: readonly RuleUnit[], selected: number[], now: number): number[] {
  switch (rule.template) {
    case "latestPushedK":
      return topK(selected, rule.params.latestPushedK, byOwnPushedDesc(units));
    case "latestPulledN":
      return topK(selected, rule.params.latestPulledN, byPulledDesc(units));
    case "latestActiveK":
      return topK(selected, rule.params.latestActiveK, byActiveDesc(units));
    case "nDaysSinceLastPush": {
      const cutoff = now - rule.params.nDaysSinceLastPush * DAY_MS;
      return selected.filter((u) => units[u]!.pushed >= cutoff);
    }
    case "nDaysSinceLastPull": {
      const cutoff = now - rule.params.nDaysSinceLastPull * DAY_MS;
      return selected.filter((u) => units[u]!.pulled >= cutoff);
    }
    case "always":
      return selected;
    case "latestPerSemverLine":
      return latestPerSemverLine(units, selected, rule.params.keep, rule.params.line, rule.params.include_prereleases);
  }
}

/** A short human label for reasons: `rules[2] latestPushedK=10`. */
export function ruleLabel(rule: Rule, index: number): string {
  const entries = Object.entries(rule.params);
  const [only] = entries;
  if (entries.length === 1 && only && only[0] === rule.template) return `rules[${index}] ${rule.template}=${String(only[1])}`;
  const params = entries.map(([k, v]) => `${k}=${String(v)}`).join(",");
  return `rules[${index}] ${rule.template}${params ? ` ${params}` : ""}`;
}
