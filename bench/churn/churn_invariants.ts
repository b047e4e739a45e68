// The churn soak's invariants, checked against what the fleet did (every PUT, with its times),
// ebb's DELETE requests as the recording proxy saw them, and the registry's own /v2/ view at
// the end (manifest HEADs and tag lists). ebb's decision rows are read only to date a
// deletion's decision and to print evidence; they never make a violation disappear.
import type { TrackedArtifact } from "./churn_fleet.js";
import type { LoggedRequest } from "./churn_proxy.js";

// ============================================================================================
// PUSH-TIME SEMANTICS - align this with the semantics ebb implements for count rules
// (latestPushedK). The soak ranks "the K newest builds" of a repository with pushTimeOf.
//
//   first-push (default): an artifact's push time is when its digest was first pushed;
//                         adding a tag to it later (re-tag, promotion) does not change it.
//   last-tag:             an artifact's push time is the latest of its first push and every
//                         tag assignment (a re-tag makes it the newest push).
//
// BENCH_CHURN_PUSH_TIME=first-push|last-tag chooses; `asOf` is the moment of the decision
// being judged: only tag assignments whose PUT had started by then count.
// ============================================================================================
export type PushTimeSemantics = "first-push" | "last-tag";

export function pushTimeSemantics(): PushTimeSemantics {
  const v = process.env.BENCH_CHURN_PUSH_TIME ?? "first-push";
  if (v !== "first-push" && v !== "last-tag") throw new Error(`BENCH_CHURN_PUSH_TIME: must be first-push or last-tag, got ${JSON.stringify(v)}`);
  return v;
}

export function pushTimeOf(a: TrackedArtifact, asOf: number, semantics: PushTimeSemantics): number {
  if (semantics === "first-push") return a.firstPushedAt;
  let t = a.firstPushedAt;
  for (const tag of a.tags) if (tag.startedAt <= asOf && tag.ackAt > t) t = tag.ackAt;
  return t;
}

/**
 * Artifacts a count rule ranks: tagged manifests without a subject that no index holds. A
 * cosign-style signature (tag sha256-<hex>.sig) is an attachment of its subject, not ranked.
 */
export function isRanked(a: TrackedArtifact): boolean {
  return a.kind === "image" || a.kind === "index";
}

/** A tag a rule keeps whatever its age. */
export const KEPT_TAG = /^(keep|release)-/;

export type ViolationKind =
  | "kept-deleted"
  | "kept-deleted-unseen"
  | "newest-k-deleted"
  | "index-child-of-surviving-index-gone"
  | "referrer-of-surviving-subject-gone"
  | "out-of-scope-touched"
  | "gone-without-ebb-delete"
  | "delete-without-decision"
  | "execution-stuck"
  | "ebb-exit"
  | "repository-not-cleaned";

export const VIOLATION_KINDS: ViolationKind[] = [
  "kept-deleted", "kept-deleted-unseen", "newest-k-deleted", "index-child-of-surviving-index-gone", "referrer-of-surviving-subject-gone",
  "out-of-scope-touched", "gone-without-ebb-delete", "delete-without-decision", "execution-stuck", "ebb-exit",
  "repository-not-cleaned",
];

export interface Violation {
  kind: ViolationKind;
  evidence: string;
}

export interface DecisionRow {
  execution_id: number;
  repository: string;
  digest: string;
  action: string;
  outcome: string;
  reason: string;
  tags: string[];
  role: string;
  /** ms since epoch: the decision row's insert; its task's start (the read comes after it) */
  decided_at: number;
  task_started_at: number | null;
  acted_at: number | null;
  pushed_at: number | null;
}

export interface FinalView {
  /** `${repo}@${digest}` -> HEAD status in the registry at the end */
  head: Map<string, number>;
  /** repo -> tags listed by the registry at the end */
  tags: Map<string, Set<string>>;
}

export interface DeleteRequest extends LoggedRequest {
  repo: string;
  digest: string;
}

const MANIFEST_PATH = /^\/v2\/(.+)\/manifests\/([^/?]+)$/;

export function deleteRequests(requests: readonly LoggedRequest[]): DeleteRequest[] {
  const out: DeleteRequest[] = [];
  for (const r of requests) {
    if (r.method !== "DELETE") continue;
    const m = MANIFEST_PATH.exec(r.path);
    if (m) out.push({ ...r, repo: decodeURIComponent(m[1]!), digest: decodeURIComponent(m[2]!) });
  }
  return out;
}

export interface InvariantInput {
  artifacts: Map<string, TrackedArtifact>;
  inScope: string[];
  outOfScope: string;
  latestK: number;
  proxyRequests: readonly LoggedRequest[];
  decisions: DecisionRow[];
  final: FinalView;
  semantics: PushTimeSemantics;
  /**
   * A keep tag the registry had answered this long before the deciding task started, deleted
   * because ebb had not yet acknowledged its notification, is a violation ("kept-deleted-unseen":
   * the tag was there, ebb's catalog lagged); closer to the task's start it is a race.
   */
  unseenSlackMs: number;
  /**
   * `${repo}@${tag}` -> when ebb answered 200 to the notification envelope carrying that tag's
   * push (ebb writes pushes before it answers). The registry's notifications are asynchronous:
   * a tag ebb had not acknowledged when the deciding task started is a race, reported apart.
   */
  tagIngestedAt: Map<string, number>;
}

export interface InvariantResult {
  violations: Violation[];
  /** keep/release tags the registry answered too close to (or after) the deciding task's start for ebb to know */
  races: string[];
  /** deleted digests a re-tag PUT created again afterwards */
  resurrected: number;
  deletes202: DeleteRequest[];
}

const iso = (ms: number | null | undefined) => (ms == null ? "-" : new Date(ms).toISOString().slice(11, 23));
const short = (d: string) => d.slice(7, 19);

function describe(a: TrackedArtifact): string {
  return `${a.repo}@${short(a.digest)} (${a.kind}, first pushed ${iso(a.firstPushedAt)}, tags ${a.tags.map((t) => `${t.tag}@${iso(t.ackAt)}`).join(" ") || "none"})`;
}

function describeDecision(d: DecisionRow | undefined): string {
  if (!d) return "no ebb decision row";
  return `ebb decision: execution ${d.execution_id}, task started ${iso(d.task_started_at)}, decided ${iso(d.decided_at)}, acted ${iso(d.acted_at)}, ${d.action}/${d.outcome}, role ${d.role}, ` +
    `tags seen [${d.tags.join(", ")}], push time used ${iso(d.pushed_at)}, reason "${d.reason}"`;
}

export function checkInvariants(x: InvariantInput): InvariantResult {
  const violations: Violation[] = [];
  const races: string[] = [];
  const add = (kind: ViolationKind, evidence: string) => violations.push({ kind, evidence });
  const deletes = deleteRequests(x.proxyRequests);
  const deletes202 = deletes.filter((d) => d.status === 202);
  const deletedAt = new Map<string, DeleteRequest[]>();
  for (const d of deletes202) {
    const k = `${d.repo}@${d.digest}`;
    deletedAt.set(k, [...(deletedAt.get(k) ?? []), d]);
  }
  const decisionsOf = new Map<string, DecisionRow[]>();
  for (const d of x.decisions) {
    const k = `${d.repository}@${d.digest}`;
    decisionsOf.set(k, [...(decisionsOf.get(k) ?? []), d]);
  }
  /** the deleting decision behind a DELETE: the latest 'delete' decision made before it */
  const decisionFor = (d: DeleteRequest): DecisionRow | undefined =>
    (decisionsOf.get(`${d.repo}@${d.digest}`) ?? [])
      .filter((r) => r.action === "delete" && r.decided_at <= d.startedAt + 5)
      .sort((a, b) => b.decided_at - a.decided_at)[0];

  /** what ebb's count rule kept in the same task, with the latest push time its decision rows record */
  const rankedByEbb = (decision: DecisionRow | undefined): string => {
    if (!decision) return "";
    const kept = x.decisions.filter((r) => r.execution_id === decision.execution_id && r.repository === decision.repository &&
      r.role === "candidate" && r.action !== "delete").sort((a, b) => (b.pushed_at ?? 0) - (a.pushed_at ?? 0));
    return `ebb kept in that execution: [${kept.map((r) => `${short(r.digest)} [${r.tags.join(" ")}] latest push ${iso(r.pushed_at)} (${r.reason})`).join("; ")}]`;
  };

  // ebb's DELETEs: in scope, decided, and nothing a rule keeps
  for (const del of deletes) {
    const key = `${del.repo}@${del.digest}`;
    const a = x.artifacts.get(key);
    if (del.repo === x.outOfScope || !x.inScope.includes(del.repo)) {
      add("out-of-scope-touched", `ebb sent DELETE ${del.path} at ${iso(del.startedAt)} (status ${del.status}) to a repository outside the policy's scope`);
      continue;
    }
    const decision = decisionFor(del);
    if (!decision) add("delete-without-decision", `DELETE ${del.path} at ${iso(del.startedAt)} (status ${del.status}) has no earlier 'delete' decision of ebb; ${a ? describe(a) : "digest unknown to the fleet"}`);
    if (del.status !== 202 || !a) continue;
    const decidedAt = decision?.decided_at ?? del.startedAt;
    // kept tags: a keep-*/release-* tag ebb had acknowledged before the deciding task started
    // (a retried task's start can be later than the decisions of its first attempt)
    const readFrom = Math.min(decision?.task_started_at ?? decidedAt, decidedAt);
    for (const t of a.tags) {
      if (!KEPT_TAG.test(t.tag) || t.startedAt > del.startedAt) continue; // assigned after this DELETE: a re-creation
      const seen = decision?.tags.includes(t.tag) ?? false;
      const ingested = x.tagIngestedAt.get(`${a.repo}@${t.tag}`);
      const when = `registry answered the tag's PUT at ${iso(t.ackAt)}, ebb acknowledged its push event ${ingested === undefined ? "never" : `at ${iso(ingested)}`}, the deciding task started ${iso(readFrom)}`;
      if (seen || (ingested !== undefined && ingested < readFrom)) {
        add("kept-deleted", `${describe(a)} deleted by DELETE at ${iso(del.startedAt)} although ebb knew tag ${t.tag} (${when}${seen ? "; ebb's decision row lists the tag" : ""}); ${describeDecision(decision)}`);
      } else if (t.ackAt < readFrom - x.unseenSlackMs) {
        add("kept-deleted-unseen", `${describe(a)} deleted by DELETE at ${iso(del.startedAt)}: tag ${t.tag} was in the registry ${readFrom - t.ackAt} ms before the deciding task started, but ebb's catalog did not have it yet (${when}); ${describeDecision(decision)}`);
      } else {
        races.push(`${a.repo}@${short(a.digest)}: tag ${t.tag}: ${when}, DELETE at ${iso(del.startedAt)}`);
      }
    }
    // the K newest: fewer than K ranked artifacts newer than this one had even started their PUT
    if (isRanked(a)) {
      const mine = pushTimeOf(a, decidedAt, x.semantics);
      const newer = [...x.artifacts.values()].filter((b) => b.repo === a.repo && b !== a && isRanked(b) && b.firstStartedAt <= decidedAt)
        .filter((b) => {
          const t = pushTimeOf(b, decidedAt, x.semantics);
          return t > mine || (t === mine && b.digest < a.digest);
        });
      if (newer.length < x.latestK) {
        add("newest-k-deleted", `${describe(a)} deleted by DELETE at ${iso(del.startedAt)} while only ${newer.length} ranked artifact(s) of ${a.repo} were newer by ${x.semantics} push time at the decision (${iso(decidedAt)}), so it was among the ${x.latestK} newest: newer ones [${newer.map((b) => `${short(b.digest)}@${iso(pushTimeOf(b, decidedAt, x.semantics))}`).join(", ")}]; ${describeDecision(decision)}; ${rankedByEbb(decision)}`);
      }
    }
    // an index child goes only after (or with) its index
    if (a.kind === "child" && a.parent) {
      const parentGone = (deletedAt.get(`${a.repo}@${a.parent}`) ?? []).some((p) => p.startedAt <= del.endedAt);
      if (!parentGone) add("index-child-of-surviving-index-gone", `${describe(a)} deleted at ${iso(del.startedAt)} while its index ${short(a.parent)} had not been deleted; ${describeDecision(decision)}`);
    }
  }

  // the registry's view at the end
  let resurrected = 0;
  for (const a of x.artifacts.values()) {
    const key = `${a.repo}@${a.digest}`;
    const status = x.final.head.get(key);
    const dels = deletedAt.get(key) ?? [];
    const lastDelete = dels.length ? Math.max(...dels.map((d) => d.startedAt)) : undefined;
    if (lastDelete !== undefined && status === 200) resurrected++;
    if (a.repo === x.outOfScope) {
      if (status !== 200) add("out-of-scope-touched", `${describe(a)} answers HEAD ${status} at the end`);
      for (const t of a.tags) if (!x.final.tags.get(a.repo)?.has(t.tag)) add("out-of-scope-touched", `${describe(a)}: tag ${t.tag} no longer listed at the end`);
      continue;
    }
    if (status !== 200) {
      if (lastDelete === undefined) add("gone-without-ebb-delete", `${describe(a)} answers HEAD ${status} at the end and ebb never sent a DELETE (202) for it`);
      continue;
    }
    for (const t of a.tags) {
      if (x.final.tags.get(a.repo)?.has(t.tag)) continue;
      // a DELETE after the tag was assigned removed it (then a re-tag PUT created the digest again)
      if (lastDelete !== undefined && lastDelete >= t.startedAt) continue;
      add("gone-without-ebb-delete", `${describe(a)}: tag ${t.tag} is no longer listed although the digest is present and was never deleted after the tag was assigned`);
    }
    if (a.kind === "index") {
      for (const c of a.children) {
        if (x.final.head.get(`${a.repo}@${c}`) !== 200) {
          add("index-child-of-surviving-index-gone", `${describe(a)} is present at the end but its child ${short(c)} answers HEAD ${x.final.head.get(`${a.repo}@${c}`)}`);
        }
      }
    }
  }
  for (const a of x.artifacts.values()) {
    if ((a.kind !== "referrer" && a.kind !== "signature") || !a.parent) continue;
    const st = x.final.head.get(`${a.repo}@${a.digest}`);
    if (st !== 200 && x.final.head.get(`${a.repo}@${a.parent}`) === 200 && (deletedAt.get(`${a.repo}@${a.parent}`) ?? []).length === 0) {
      add("referrer-of-surviving-subject-gone", `${describe(a)} answers HEAD ${st} at the end while its subject ${short(a.parent)} is present and was never deleted`);
    }
  }
  return { violations, races, resurrected, deletes202 };
}
