// The churn soak's judge: a violation it reports must be real, and a real one must not slip
// through. Histories are written out by hand (what the fleet pushed, what ebb DELETEd, what
// ebb decided, what the registry shows at the end); no registry or ebb is involved.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { TrackedArtifact } from "../../bench/churn/churn_fleet.js";
import { checkInvariants, type DecisionRow, type InvariantInput, type PushTimeSemantics } from "../../bench/churn/churn_invariants.js";
import type { LoggedRequest } from "../../bench/churn/churn_proxy.js";

const REPO = "team/api";
const T0 = Date.parse("2026-01-01T00:00:00Z");
const S = 1000;

function digest(n: number): string {
  return `sha256:${n.toString(16).padStart(64, "0")}`;
}

function build(n: number, at: number, kind: TrackedArtifact["kind"] = "image", repo = REPO): TrackedArtifact {
  return {
    repo, digest: digest(n), kind, mediaType: "application/vnd.oci.image.manifest.v1+json", bytes: Buffer.from(`${n}`),
    firstStartedAt: at - 5, firstPushedAt: at, children: [],
    tags: kind === "child" || kind === "referrer" ? [] : [{ tag: `build-${n}`, startedAt: at - 5, ackAt: at, retag: false }],
  };
}

function del(a: TrackedArtifact, at: number, status = 202): LoggedRequest {
  return { method: "DELETE", path: `/v2/${a.repo}/manifests/${a.digest}`, startedAt: at, endedAt: at + 10, status };
}

function decision(a: TrackedArtifact, at: number, tags = a.tags.map((t) => t.tag)): DecisionRow {
  return {
    execution_id: 1, repository: a.repo, digest: a.digest, action: "delete", outcome: "deleted", reason: "not retained by any rule",
    tags, role: a.kind === "child" ? "index_child" : "candidate", decided_at: at, task_started_at: at - 100, acted_at: at + 20, pushed_at: a.firstPushedAt,
  };
}

function input(artifacts: TrackedArtifact[], requests: LoggedRequest[], decisions: DecisionRow[], semantics: PushTimeSemantics = "first-push",
  tagIngestedAt = new Map<string, number>()): InvariantInput {
  const gone = new Set(requests.filter((r) => r.status === 202).map((r) => r.path.split("/manifests/")[1]));
  const head = new Map(artifacts.map((a) => [`${a.repo}@${a.digest}`, gone.has(a.digest) ? 404 : 200]));
  const tags = new Map<string, Set<string>>();
  for (const a of artifacts) {
    const s = tags.get(a.repo) ?? new Set<string>();
    if (!gone.has(a.digest)) for (const t of a.tags) s.add(t.tag);
    tags.set(a.repo, s);
  }
  return {
    artifacts: new Map(artifacts.map((a) => [`${a.repo}@${a.digest}`, a])), inScope: [REPO], outOfScope: "other/untouchable", latestK: 2,
    proxyRequests: requests, decisions, final: { head, tags }, semantics, tagIngestedAt, unseenSlackMs: 2000,
  };
}

const kinds = (r: ReturnType<typeof checkInvariants>) => r.violations.map((v) => v.kind).sort();

test("deleting the oldest of three builds with K = 2 is no violation; deleting the 2nd newest is", () => {
  const [b1, b2, b3] = [build(1, T0), build(2, T0 + 10 * S), build(3, T0 + 20 * S)];
  const ok = checkInvariants(input([b1!, b2!, b3!], [del(b1!, T0 + 31 * S)], [decision(b1!, T0 + 30 * S)]));
  assert.deepEqual(kinds(ok), []);
  const bad = checkInvariants(input([b1!, b2!, b3!], [del(b2!, T0 + 31 * S)], [decision(b2!, T0 + 30 * S)]));
  assert.deepEqual(kinds(bad), ["newest-k-deleted"]);
  assert.match(bad.violations[0]!.evidence, /only 1 ranked artifact/);
});

test("a build pushed after the decision does not excuse deleting what was among the K newest when ebb decided", () => {
  const [b1, b2, b3] = [build(1, T0), build(2, T0 + 10 * S), build(3, T0 + 40 * S)];
  const r = checkInvariants(input([b1!, b2!, b3!], [del(b1!, T0 + 41 * S)], [decision(b1!, T0 + 30 * S)]));
  assert.deepEqual(kinds(r), ["newest-k-deleted"]);
});

test("a re-tag of an old build pushing the 2nd newest out is a violation under first-push and none under last-tag", () => {
  const [b1, b2, b3] = [build(1, T0), build(2, T0 + 10 * S), build(3, T0 + 20 * S)];
  b1!.tags.push({ tag: "release-1", startedAt: T0 + 25 * S, ackAt: T0 + 25 * S + 10, retag: true });
  const history = (s: PushTimeSemantics) => checkInvariants(input([b1!, b2!, b3!], [del(b2!, T0 + 31 * S)], [decision(b2!, T0 + 30 * S)], s));
  assert.deepEqual(kinds(history("first-push")), ["newest-k-deleted"]);
  assert.deepEqual(kinds(history("last-tag")), []);
});

test("a keep tag ebb had acknowledged before the deciding task started makes the deletion a violation, one long in the registry too; one answered just before the task is a race", () => {
  const [b1, b2, b3] = [build(1, T0), build(2, T0 + 10 * S), build(3, T0 + 20 * S)];
  b1!.tags.push({ tag: "keep-1", startedAt: T0 + 25 * S, ackAt: T0 + 25 * S + 10, retag: true });
  const ingested = new Map([[`${REPO}@keep-1`, T0 + 25 * S + 20]]);
  const history = (decidedAt: number, seenTags: string[], ingestion = ingested) =>
    checkInvariants(input([b1!, b2!, b3!], [del(b1!, decidedAt + S)], [decision(b1!, decidedAt, seenTags)], "first-push", ingestion));
  assert.deepEqual(kinds(history(T0 + 30 * S, ["build-1"])), ["kept-deleted"]);
  // the task started (T0 + 25 s - 100 ms) before ebb had the tag: a race, not a violation
  const late = history(T0 + 25 * S, ["build-1"]);
  assert.deepEqual(kinds(late), []);
  assert.equal(late.races.length, 1);
  // a tag in the registry long before the task started that ebb's catalog had not caught up with
  assert.deepEqual(kinds(history(T0 + 60 * S, ["build-1"], new Map())), ["kept-deleted-unseen"]);
  // whatever the timing, a decision that saw the keep tag and deleted anyway is a violation
  assert.deepEqual(kinds(history(T0 + 25 * S, ["build-1", "keep-1"])), ["kept-deleted"]);
});

test("a manifest gone without a DELETE, and a DELETE without a decision, are violations", () => {
  const [b1, b2, b3] = [build(1, T0), build(2, T0 + 10 * S), build(3, T0 + 20 * S)];
  const i = input([b1!, b2!, b3!], [], []);
  i.final.head.set(`${REPO}@${b1!.digest}`, 404);
  assert.deepEqual(kinds(checkInvariants(i)), ["gone-without-ebb-delete"]);
  assert.deepEqual(kinds(checkInvariants(input([b1!, b2!, b3!], [del(b1!, T0 + 31 * S)], []))), ["delete-without-decision"]);
});

test("an index child deleted after its index is fine; one deleted while the index stays is a violation", () => {
  const [b1, b2, b3] = [build(1, T0, "index"), build(2, T0 + 10 * S), build(3, T0 + 20 * S)];
  const child = build(9, T0 - 100, "child");
  child.parent = b1!.digest;
  b1!.children = [child.digest];
  const together = checkInvariants(input([b1!, b2!, b3!, child], [del(b1!, T0 + 31 * S), del(child, T0 + 32 * S)],
    [decision(b1!, T0 + 30 * S), decision(child, T0 + 30 * S)]));
  assert.deepEqual(kinds(together), []);
  const alone = checkInvariants(input([b1!, b2!, b3!, child], [del(child, T0 + 32 * S)], [decision(child, T0 + 30 * S)]));
  assert.deepEqual(kinds(alone), ["index-child-of-surviving-index-gone", "index-child-of-surviving-index-gone"]);
});

test("any DELETE to the out-of-scope repository is a violation", () => {
  const o = build(1, T0, "image", "other/untouchable");
  const r = checkInvariants(input([o], [del(o, T0 + S)], [decision(o, T0 + S - 10)]));
  assert.ok(kinds(r).includes("out-of-scope-touched"));
});
