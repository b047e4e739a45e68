// The decision step for ONE repository: pure, no I/O. The worker calls it once per repository
// task with the full candidate list of that repository (never a partial read).
//
// Order of reasoning:
//  1. Input sanity: a digest twice, a tag on two digests or a non-finite time means the read
//     is inconsistent: outcome "error", every artifact gets action "error", nothing is deleted.
//  2. Scope: out of the policy scope, or selected by no enabled rule -> "untouched", all retained.
//  3. Graph roles: an artifact with a `subject` is a referrer; so is an artifact whose tags are
//     all cosign-style attachment tags (`sha256-<hex>.sig|.att|.sbom`, see attachmentOf): it is
//     an attachment of `sha256:<hex>`. An untagged artifact referenced by an index's `children`
//     is an index child. None of these is ranked by rules. Everything else is a candidate;
//     attachment tags never count as tags of a candidate for selectors (an artifact that has
//     ordinary tags too is ranked by those and also kept with a kept subject).
//  4. Protected tags: a candidate (or any artifact) with a tag matching a protected rule of this
//     repository is "protected" with all its tags. Protected artifacts still take their rank in
//     rules (as Harbor's immutable tags do).
//  5. Rules: each enabled rule selecting the repository filters the ranking units with its tag
//     selectors (AND) and keeps what its template keeps; kept sets are unioned. The lowest rule
//     index that kept a unit is recorded. Deletion unit "artifact": a unit is an artifact with
//     all its tags; "untag": a unit is one tag (untagged artifacts stay whole units) and an
//     artifact is deleted only when none of its tags is kept, else only its unkept tags go.
//  6. Graph closure: everything reachable from a kept artifact through `children` and through
//     referrers (artifacts whose subject it is) is kept, recursively - a tagged manifest that a
//     kept index references is kept even if no rule kept it. Index children and referrers not
//     reached are deleted with their index / subject. A referrer or attachment whose subject is
//     not in the repository is kept (we do not delete what we cannot place in the graph; Harbor
//     likewise never offers an accessory to retention).
//  7. Caps: if the plan deletes or untags more artifacts than caps.max_deletions, or a larger
//     share than caps.max_fraction, the repository is "aborted": every delete/untag becomes
//     retain (planned_action keeps what was planned) and nothing is to be deleted.
//
// Push times: count rules (latestPushedK, latestActiveK) rank an artifact by its own push (when
// its manifest arrived), so a tag added to an old build does not take a newer build's place;
// nDaysSinceLastPush uses the last push of the artifact or any of its tags (Harbor). In
// deletion unit "untag" a unit is one tag and its push is that tag's push.
import { attachmentOf, type Candidate } from "./candidate.js";
import { scopeOf, tagSelected, type CompiledPolicy } from "./compiled_policy.js";
import {
  countDecisions,
  type Decision,
  type DecisionAction,
  type DecisionRole,
  type RepositoryEvaluation,
  type RepositoryOutcome,
} from "./decision.js";
import { retainedByTemplate, type RuleUnit } from "./templates.js";

const NEVER = Number.NEGATIVE_INFINITY;

function orNever(t: number | null | undefined): number {
  return t == null ? NEVER : t;
}

function effectiveTimes(c: Candidate): [number, number] {
  let pushed = orNever(c.pushed_at);
  let pulled = orNever(c.pulled_at);
  for (const t of c.tags) {
    if (t.pushed_at != null && t.pushed_at > pushed) pushed = t.pushed_at;
    if (t.pulled_at != null && t.pulled_at > pulled) pulled = t.pulled_at;
  }
  return [pushed, pulled];
}

/**
 * The artifact's own push: when its manifest arrived. Without one, the earliest tag push (a tag
 * pushed onto the digest proves the manifest was there by then).
 */
function artifactPushTime(c: Candidate): number {
  if (c.pushed_at != null) return c.pushed_at;
  let first = Number.POSITIVE_INFINITY;
  for (const t of c.tags) if (t.pushed_at != null && t.pushed_at < first) first = t.pushed_at;
  return first === Number.POSITIVE_INFINITY ? NEVER : first;
}

const COUNT_TEMPLATES: ReadonlySet<string> = new Set(["latestPushedK", "latestActiveK"]);

/** What lives and dies with a subject: a referrer (label null) or a cosign-style attachment. */
interface Dependent {
  index: number;
  /** e.g. "sha256:ab.. (cosign .sig tag)"; null for an OCI referrer */
  label: string | null;
}

function validTime(t: number | null | undefined): boolean {
  return t == null || Number.isFinite(t);
}

/** Why this candidate list cannot be trusted, or null. */
function inputProblem(candidates: readonly Candidate[]): string | null {
  const digests = new Set<string>();
  const tags = new Map<string, string>();
  for (const c of candidates) {
    if (typeof c.digest !== "string" || c.digest === "") return "a candidate has no digest";
    if (digests.has(c.digest)) return `digest ${c.digest} appears twice`;
    digests.add(c.digest);
    if (!validTime(c.pushed_at) || !validTime(c.pulled_at)) return `digest ${c.digest} has an invalid time`;
    for (const t of c.tags) {
      if (typeof t.name !== "string" || t.name === "") return `digest ${c.digest} has an empty tag name`;
      if (!validTime(t.pushed_at) || !validTime(t.pulled_at)) return `tag ${t.name} has an invalid time`;
      const other = tags.get(t.name);
      if (other !== undefined) return `tag ${t.name} is on two digests (${other}, ${c.digest})`;
      tags.set(t.name, c.digest);
    }
  }
  return null;
}

function timeOrNull(t: number): number | null {
  return t === NEVER ? null : t;
}

function uniform(
  repository: string,
  candidates: readonly Candidate[],
  outcome: RepositoryOutcome,
  action: DecisionAction,
  reason: string,
): RepositoryEvaluation {
  const decisions: Decision[] = candidates.map((c) => {
    const [pushed, pulled] = effectiveTimes(c);
    return {
      repository,
      digest: c.digest,
      tags: c.tags.map((t) => t.name),
      action,
      reason,
      rule: null,
      role: "candidate",
      pushed_at: timeOrNull(pushed),
      pulled_at: timeOrNull(pulled),
    };
  });
  return { repository, outcome, reason, decisions, counts: countDecisions(decisions) };
}

export function evaluateRepository(
  compiled: CompiledPolicy,
  repository: string,
  candidates: readonly Candidate[],
  now: number | Date,
): RepositoryEvaluation {
  const nowMs = typeof now === "number" ? now : now.getTime();
  if (!Number.isFinite(nowMs)) return uniform(repository, candidates, "error", "error", "evaluation time is invalid");
  const problem = inputProblem(candidates);
  if (problem) return uniform(repository, candidates, "error", "error", `inconsistent candidates: ${problem}`);

  const scope = scopeOf(compiled, repository);
  if (!scope.inScope) return uniform(repository, candidates, "untouched", "retain", "repository is out of the policy scope");
  if (scope.rules.length === 0) {
    return uniform(repository, candidates, "untouched", "retain", "no enabled rule selects this repository");
  }

  try {
    return decide(compiled, scope.rules, scope.protections, repository, candidates, nowMs);
  } catch (err) {
    return uniform(repository, candidates, "error", "error", `rule evaluation failed: ${(err as Error).message}`);
  }
}

function decide(
  compiled: CompiledPolicy,
  rules: ReturnType<typeof scopeOf>["rules"],
  protections: ReturnType<typeof scopeOf>["protections"],
  repository: string,
  candidates: readonly Candidate[],
  nowMs: number,
): RepositoryEvaluation {
  const n = candidates.length;
  const untagMode = compiled.policy.deletion_unit === "untag";

  // ---- graph roles ----
  const indexOf = new Map<string, number>();
  for (let i = 0; i < n; i++) indexOf.set(candidates[i]!.digest, i);
  const role: DecisionRole[] = new Array<DecisionRole>(n).fill("candidate");
  const dependentsOf: (Dependent[] | undefined)[] = new Array(n);
  const hasParent: boolean[] = new Array<boolean>(n).fill(false);
  /** why a referrer / attachment whose subject is not here is kept */
  const dangling: (string | undefined)[] = new Array(n);
  /** the first subject an attachment tag names, as shown in reasons */
  const attachmentLabel: (string | undefined)[] = new Array(n);
  /** tags other than attachment tags: what selectors and the untag unit see */
  const ordinaryTags: string[][] = new Array(n);
  for (let i = 0; i < n; i++) {
    const c = candidates[i]!;
    const ordinary: string[] = [];
    const attached: string[] = [];
    for (const t of c.tags) {
      const a = attachmentOf(t.name);
      if (a === null) {
        ordinary.push(t.name);
        continue;
      }
      const label = `${a.subject} (cosign .${a.kind} tag)`;
      attachmentLabel[i] ??= label;
      const s = indexOf.get(a.subject);
      if (s === undefined || s === i) attached.push(label);
      else (dependentsOf[s] ??= []).push({ index: i, label });
    }
    ordinaryTags[i] = ordinary;
    if (c.subject != null) {
      role[i] = "referrer";
      const s = indexOf.get(c.subject);
      if (s === undefined || s === i) dangling[i] = `referrer whose subject ${c.subject} is not in this repository`;
      else (dependentsOf[s] ??= []).push({ index: i, label: null });
    } else if (c.tags.length > 0 && ordinary.length === 0) {
      role[i] = "referrer";
    }
    // an attachment (no ordinary tag) naming a subject that is not here is kept; one with
    // ordinary tags is a candidate and the rules decide it
    if (role[i] === "referrer" && attached.length > 0) {
      dangling[i] ??= `attachment of ${attached[0]!} whose subject is not in this repository`;
    }
    if (c.children) {
      for (const child of c.children) {
        const j = indexOf.get(child);
        if (j !== undefined && j !== i) hasParent[j] = true;
      }
    }
  }
  for (let i = 0; i < n; i++) {
    if (role[i] === "candidate" && hasParent[i] && candidates[i]!.tags.length === 0) role[i] = "index_child";
  }

  const action: (DecisionAction | undefined)[] = new Array(n);
  const reason: string[] = new Array<string>(n).fill("");
  const ruleOf: (number | null)[] = new Array<number | null>(n).fill(null);
  const untagTags: (string[] | undefined)[] = new Array(n);

  // ---- protected tags (any role) ----
  if (protections.length > 0) {
    for (let i = 0; i < n; i++) {
      for (const tag of candidates[i]!.tags) {
        const p = protections.find((pr) => pr.tag.test(tag.name));
        if (p) {
          action[i] = "protected";
          reason[i] = `tag ${tag.name} matches protected[${p.index}]`;
          break;
        }
      }
    }
  }

  // ---- ranking units ----
  const units: RuleUnit[] = [];
  const pushedEff = new Float64Array(n);
  const pulledEff = new Float64Array(n);
  const ownPush = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const c = candidates[i]!;
    const [pushed, pulled] = effectiveTimes(c);
    pushedEff[i] = pushed;
    pulledEff[i] = pulled;
    const own = artifactPushTime(c);
    ownPush[i] = own;
    if (role[i] !== "candidate") continue;
    const names = ordinaryTags[i]!;
    if (!untagMode || names.length === 0) {
      units.push({
        artifact: i,
        digest: c.digest,
        tag: null,
        tagNames: names,
        pushed,
        ownPushed: own,
        pulled,
        active: own > pulled ? own : pulled,
      });
    } else {
      for (const t of c.tags) {
        if (attachmentOf(t.name) !== null) continue;
        const tp = t.pushed_at ?? orNever(c.pushed_at);
        const tl = t.pulled_at ?? orNever(c.pulled_at);
        units.push({ artifact: i, digest: c.digest, tag: t.name, tagNames: [t.name], pushed: tp, ownPushed: tp, pulled: tl, active: tp > tl ? tp : tl });
      }
    }
  }
  const countRule = rules.some((r) => COUNT_TEMPLATES.has(r.rule.template));

  // ---- rules: union of retained sets; lowest rule index recorded ----
  const keptBy = new Int32Array(units.length).fill(-1);
  const labels = new Map<number, string>();
  for (const rule of rules) {
    labels.set(rule.index, rule.label);
    const selected: number[] = [];
    for (let u = 0; u < units.length; u++) {
      const names = units[u]!.tagNames;
      let ok = true;
      for (const s of rule.tagSelectors) {
        if (!tagSelected(s, names)) {
          ok = false;
          break;
        }
      }
      if (ok) selected.push(u);
    }
    for (const u of retainedByTemplate(rule.rule, units, selected, nowMs)) {
      const prev = keptBy[u]!;
      if (prev < 0 || rule.index < prev) keptBy[u] = rule.index;
    }
  }

  // ---- artifact decisions from units ----
  let u = 0;
  while (u < units.length) {
    const i = units[u]!.artifact;
    let end = u;
    while (end < units.length && units[end]!.artifact === i) end++;
    if (action[i] !== "protected") {
      let bestRule = -1;
      const dropped: string[] = [];
      for (let k = u; k < end; k++) {
        const r = keptBy[k]!;
        if (r >= 0) {
          if (bestRule < 0 || r < bestRule) bestRule = r;
        } else if (units[k]!.tag !== null) {
          dropped.push(units[k]!.tag!);
        }
      }
      if (bestRule < 0) {
        action[i] = "delete";
        reason[i] = "not retained by any rule";
        if (countRule && !untagMode && ownPush[i]! !== NEVER && pushedEff[i]! > ownPush[i]!) {
          reason[i] += ` (pushed ${new Date(ownPush[i]!).toISOString()}; a tag pushed onto it later does not make it newer for count rules)`;
        }
      } else {
        ruleOf[i] = bestRule;
        const label = labels.get(bestRule)!;
        if (dropped.length > 0) {
          action[i] = "untag";
          untagTags[i] = dropped;
          reason[i] = `tags retained by ${label}; other tags removed`;
        } else {
          action[i] = "retain";
          reason[i] = `retained by ${label}`;
        }
      }
    }
    u = end;
  }

  // ---- referrers and attachments whose subject is not here are kept ----
  for (let i = 0; i < n; i++) {
    if (dangling[i] !== undefined && action[i] === undefined) {
      action[i] = "retain";
      reason[i] = dangling[i]!;
    }
  }

  // ---- graph closure from every kept artifact ----
  const queue: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = action[i];
    if (a === "retain" || a === "protected" || a === "untag") queue.push(i);
  }
  for (let q = 0; q < queue.length; q++) {
    const i = queue[q]!;
    const c = candidates[i]!;
    if (c.children) {
      for (const child of c.children) {
        const j = indexOf.get(child);
        if (j === undefined) continue;
        const a = action[j];
        if (a === undefined || a === "delete") {
          action[j] = "retain";
          ruleOf[j] = null;
          reason[j] = role[j] === "candidate" ? `referenced by kept index ${c.digest}` : `index child of kept ${c.digest}`;
          queue.push(j);
        }
      }
    }
    const dependents = dependentsOf[i];
    if (dependents) {
      for (const { index: j, label } of dependents) {
        if (action[j] === undefined || action[j] === "delete") {
          action[j] = "retain";
          ruleOf[j] = null;
          reason[j] = label === null ? `referrer of kept ${c.digest}` : `attachment of ${label}, kept with its subject`;
          queue.push(j);
        }
      }
    }
  }

  // ---- what the graph did not reach goes with its index / subject ----
  for (let i = 0; i < n; i++) {
    if (action[i] !== undefined) continue;
    action[i] = "delete";
    const subject = candidates[i]!.subject;
    reason[i] =
      role[i] !== "referrer"
        ? "untagged index child whose indexes are all deleted"
        : subject == null
          ? `attachment of ${attachmentLabel[i]!}, deleted with its subject`
          : `referrer of deleted ${subject}`;
  }

  // ---- caps ----
  let destructive = 0;
  for (let i = 0; i < n; i++) if (action[i] === "delete" || action[i] === "untag") destructive++;
  const caps = compiled.policy.caps;
  let abortReason: string | null = null;
  if (caps.max_deletions !== undefined && destructive > caps.max_deletions) {
    abortReason = `plan deletes or untags ${destructive} of ${n} artifacts, more than caps.max_deletions=${caps.max_deletions}`;
  } else if (caps.max_fraction !== undefined && n > 0 && destructive / n > caps.max_fraction) {
    abortReason = `plan deletes or untags ${destructive} of ${n} artifacts, more than caps.max_fraction=${caps.max_fraction}`;
  }

  const decisions: Decision[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const c = candidates[i]!;
    const planned = action[i]!;
    const d: Decision = {
      repository,
      digest: c.digest,
      tags: c.tags.map((t) => t.name),
      action: planned,
      reason: reason[i]!,
      rule: ruleOf[i]!,
      role: role[i]!,
      pushed_at: timeOrNull(pushedEff[i]!),
      pulled_at: timeOrNull(pulledEff[i]!),
    };
    if (untagTags[i]) d.untag_tags = untagTags[i]!;
    if (abortReason !== null && (planned === "delete" || planned === "untag")) {
      d.action = "retain";
      d.planned_action = planned;
      d.reason = `aborted: ${abortReason} (would be: ${reason[i]})`;
      delete d.untag_tags;
    }
    decisions[i] = d;
  }
  return {
    repository,
    outcome: abortReason !== null ? "aborted" : "evaluated",
    reason: abortReason,
    decisions,
    counts: countDecisions(decisions),
  };
}
