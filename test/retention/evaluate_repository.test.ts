// What survives a retention run, case by case. Every test names what must NOT be deleted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DAY, HOUR, NOW, artifact, decide, decideMany, deleted, inRepo, kept } from "./support/catalog.js";

const keepNewest = (k: number) => ({ template: "latestPushedK" as const, params: { latestPushedK: k } });

test("multi-tag digest: one qualifying tag keeps the artifact and all its tags; the time shown is the last push over artifact and tags", () => {
  const { get } = decide(
    { rules: [{ template: "always", tag_selectors: [{ decoration: "matches", pattern: "release-*" }] }] },
    [
      // the artifact itself is old, but its release tag was pushed recently
      artifact("sha256:old", { tags: ["dev-1", { name: "release-1", pushed_at: NOW - HOUR, pulled_at: null }], pushed: NOW - 90 * DAY }),
      artifact("sha256:dev", { tags: ["dev-2"], pushed: NOW - 2 * DAY }),
    ],
  );
  assert.equal(get("sha256:old").action, "retain");
  assert.deepEqual(get("sha256:old").tags, ["dev-1", "release-1"]);
  assert.equal(get("sha256:old").pushed_at, NOW - HOUR);
  assert.equal(get("sha256:dev").action, "delete");
});

// Six builds pushed 6..1 days ago; the oldest one was re-tagged release-1 an hour ago.
const retagged = () => [
  artifact("sha256:b1", { tags: ["build-1", { name: "release-1", pushed_at: NOW - HOUR, pulled_at: null }], pushed: NOW - 6 * DAY }),
  ...[2, 3, 4, 5, 6].map((i) => artifact(`sha256:b${i}`, { tags: [`build-${i}`], pushed: NOW - (7 - i) * DAY })),
];

test("re-tags and count rules: a tag added to an old build does not make it newer for latestPushedK / latestActiveK", () => {
  const r = decide({ rules: [keepNewest(5)] }, retagged());
  // the five newest builds survive; the re-tagged oldest build does not take one of their places
  assert.deepEqual(kept(r.evaluation.decisions), ["sha256:b2", "sha256:b3", "sha256:b4", "sha256:b5", "sha256:b6"]);
  assert.equal(r.get("sha256:b1").action, "delete");
  assert.match(r.get("sha256:b1").reason, /^not retained by any rule \(pushed 2024-05-26T00:00:00\.000Z; a tag pushed onto it later does not make it newer for count rules\)$/);
  assert.equal(r.get("sha256:b1").pushed_at, NOW - HOUR, "the time shown is still its last push");
  // the same with a tag selector: the newest build matching build-* is ranked by its build's push
  const sel = decide({ rules: [{ ...keepNewest(1), tag_selectors: [{ decoration: "matches", pattern: "**" }] }] }, retagged());
  assert.deepEqual(kept(sel.evaluation.decisions), ["sha256:b6"]);
  const active = decide({ rules: [{ template: "latestActiveK", params: { latestActiveK: 5 } }] }, retagged());
  assert.equal(active.get("sha256:b1").action, "delete");
  assert.equal(active.get("sha256:b2").action, "retain");
  // a pull is use: a re-tagged build that was pulled ranks by that pull in latestActiveK
  const pulled = retagged();
  pulled[0] = { ...pulled[0]!, pulled_at: NOW - 30 * 60_000 };
  assert.equal(decide({ rules: [{ template: "latestActiveK", params: { latestActiveK: 5 } }] }, pulled).get("sha256:b1").action, "retain");
  // a rule about the re-tag keeps it (the user's way to keep promoted builds)
  const both = decide({ rules: [keepNewest(5), { template: "always", tag_selectors: [{ decoration: "matches", pattern: "release-*" }] }] }, retagged());
  assert.deepEqual(deleted(both.evaluation.decisions), []);
  assert.equal(both.get("sha256:b1").rule, 1);
});

test("re-tags and age rules: nDaysSinceLastPush sees the tag push (Harbor), so a re-tag there only keeps more", () => {
  const r = decide({ rules: [{ template: "nDaysSinceLastPush", params: { nDaysSinceLastPush: 2 } }] }, retagged());
  assert.deepEqual(kept(r.evaluation.decisions), ["sha256:b1", "sha256:b5", "sha256:b6"]);
  // without the re-tag, the old build is outside the window
  const plain = retagged();
  plain[0] = artifact("sha256:b1", { tags: ["build-1", "release-1"], pushed: NOW - 6 * DAY });
  assert.equal(decide({ rules: [{ template: "nDaysSinceLastPush", params: { nDaysSinceLastPush: 2 } }] }, plain).get("sha256:b1").action, "delete");
});

test("re-tags in deletion unit untag: a unit is one tag and its push is that tag's push", () => {
  const r = decide({ deletion_unit: "untag", rules: [keepNewest(5)] }, retagged());
  // release-1 is the newest tag pushed: it stays, build-1 and build-2 are the oldest tags
  assert.equal(r.get("sha256:b1").action, "untag");
  assert.deepEqual(r.get("sha256:b1").untag_tags, ["build-1"]);
  assert.equal(r.get("sha256:b2").action, "delete");
});

test("an artifact without its own push time ranks by its earliest tag push", () => {
  const r = decide({ rules: [keepNewest(1)] }, [
    artifact("sha256:a", { tags: [{ name: "x", pushed_at: NOW - 5 * DAY, pulled_at: null }, { name: "y", pushed_at: NOW, pulled_at: null }], pushed: null }),
    artifact("sha256:b", { tags: ["z"], pushed: NOW - DAY }),
  ]);
  assert.equal(r.get("sha256:b").action, "retain");
  assert.equal(r.get("sha256:a").action, "delete");
});

test("never pulled: sorts last for latestPulledN (kept while the repo has <= n), never qualifies for nDaysSinceLastPull", () => {
  const candidates = [
    artifact("sha256:never", { tags: ["a"], pulled: null, pushed: NOW }),
    artifact("sha256:pulled-old", { tags: ["b"], pulled: NOW - 100 * DAY }),
    artifact("sha256:pulled-new", { tags: ["c"], pulled: NOW - DAY }),
  ];
  let r = decide({ rules: [{ template: "latestPulledN", params: { latestPulledN: 2 } }] }, candidates);
  assert.deepEqual(kept(r.evaluation.decisions), ["sha256:pulled-new", "sha256:pulled-old"]);
  r = decide({ rules: [{ template: "latestPulledN", params: { latestPulledN: 3 } }] }, candidates);
  assert.deepEqual(kept(r.evaluation.decisions).length, 3, "never-pulled still kept when repo has <= n");
  r = decide({ rules: [{ template: "nDaysSinceLastPull", params: { nDaysSinceLastPull: 20190904 } }] }, candidates);
  assert.equal(r.get("sha256:never").action, "delete");
  assert.equal(r.get("sha256:pulled-old").action, "retain");
  assert.equal(r.get("sha256:never").pulled_at, null);
});

test("exactly N days is inside the window (inclusive), one millisecond more is outside", () => {
  const r = decide({ rules: [{ template: "nDaysSinceLastPush", params: { nDaysSinceLastPush: 7 } }] }, [
    artifact("sha256:exact", { tags: ["a"], pushed: NOW - 7 * DAY }),
    artifact("sha256:older", { tags: ["b"], pushed: NOW - 7 * DAY - 1 }),
  ]);
  assert.equal(r.get("sha256:exact").action, "retain");
  assert.equal(r.get("sha256:older").action, "delete");
});

test("latestActiveK ranks by max(push, pull); ties break on digest ascending, deterministically", () => {
  const r = decide({ rules: [{ template: "latestActiveK", params: { latestActiveK: 2 } }] }, [
    artifact("sha256:pushed-old-pulled-new", { tags: ["a"], pushed: NOW - 50 * DAY, pulled: NOW - HOUR }),
    artifact("sha256:b-tie", { tags: ["b"], pushed: NOW - DAY }),
    artifact("sha256:a-tie", { tags: ["c"], pushed: NOW - DAY }),
  ]);
  assert.equal(r.get("sha256:pushed-old-pulled-new").action, "retain");
  assert.equal(r.get("sha256:a-tie").action, "retain");
  assert.equal(r.get("sha256:b-tie").action, "delete");
});

test("rules union their retained sets; what no rule selected is deleted too; disabled rules do nothing", () => {
  const r = decide(
    {
      rules: [
        { ...keepNewest(1), tag_selectors: [{ decoration: "matches", pattern: "prod-*" }] },
        { ...keepNewest(1), tag_selectors: [{ decoration: "matches", pattern: "dev-*" }] },
        { template: "always", disabled: true },
      ],
    },
    [
      artifact("sha256:p1", { tags: ["prod-1"], pushed: NOW - 3 * DAY }),
      artifact("sha256:p2", { tags: ["prod-2"], pushed: NOW - 2 * DAY }),
      artifact("sha256:d1", { tags: ["dev-1"], pushed: NOW - DAY }),
      artifact("sha256:x", { tags: ["feature-x"], pushed: NOW }),
    ],
  );
  assert.equal(r.get("sha256:p2").rule, 0);
  assert.equal(r.get("sha256:d1").rule, 1);
  assert.match(r.get("sha256:d1").reason, /rules\[1\] latestPushedK=1/);
  assert.deepEqual(deleted(r.evaluation.decisions), ["sha256:p1", "sha256:x"]);
});

test("untouched repositories: no rule selects them, or out of scope -> nothing deleted", () => {
  const catalog = [
    inRepo("proj/app", artifact("sha256:1", { tags: ["a"], pushed: NOW - 10 * DAY })),
    inRepo("proj/tools/cli", artifact("sha256:2", { tags: ["a"], pushed: NOW - 10 * DAY })),
    inRepo("other/app", artifact("sha256:3", { tags: ["a"], pushed: NOW - 10 * DAY })),
  ];
  const result = decideMany(
    {
      scope: { projects: [{ pattern: "proj" }] },
      // repository selectors see the path without the project: "app", "tools/cli"
      rules: [{ ...keepNewest(0), repository_selectors: [{ decoration: "matches", pattern: "app" }] }],
    },
    catalog,
  );
  const byRepo = new Map(result.repositories.map((r) => [r.repository, r]));
  assert.equal(byRepo.get("proj/app")!.outcome, "evaluated");
  assert.equal(byRepo.get("proj/app")!.counts.deleted, 1);
  assert.equal(byRepo.get("proj/tools/cli")!.outcome, "untouched");
  assert.equal(byRepo.get("other/app")!.outcome, "untouched");
  assert.deepEqual(deleted(result.decisions), ["sha256:1"]);
  // ** crosses "/" in repository paths
  const deep = decideMany({ rules: [{ ...keepNewest(0), repository_selectors: [{ decoration: "matches", pattern: "tools/**" }] }] }, catalog);
  assert.deepEqual(deleted(deep.decisions), ["sha256:2"]);
  const excl = decideMany({ rules: [{ ...keepNewest(0), repository_selectors: [{ decoration: "excludes", pattern: "**" }] }] }, catalog);
  assert.deepEqual(deleted(excl.decisions), []);
});

test("index children: untagged platform manifests live with a kept index, go with a deleted one", () => {
  const r = decide({ rules: [keepNewest(1)] }, [
    artifact("sha256:index-new", { tags: ["v2"], pushed: NOW - DAY, children: ["sha256:amd64-new", "sha256:arm64-shared"] }),
    artifact("sha256:index-old", { tags: ["v1"], pushed: NOW - 9 * DAY, children: ["sha256:amd64-old", "sha256:arm64-shared"] }),
    artifact("sha256:amd64-new", { pushed: NOW - DAY }),
    artifact("sha256:amd64-old", { pushed: NOW - 9 * DAY }),
    artifact("sha256:arm64-shared", { pushed: NOW - 9 * DAY }),
  ]);
  assert.equal(r.get("sha256:index-new").action, "retain");
  assert.equal(r.get("sha256:amd64-new").action, "retain");
  assert.equal(r.get("sha256:amd64-new").role, "index_child");
  assert.equal(r.get("sha256:arm64-shared").action, "retain", "shared with a kept index: must survive");
  assert.equal(r.get("sha256:index-old").action, "delete");
  assert.equal(r.get("sha256:amd64-old").action, "delete");
  assert.match(r.get("sha256:amd64-old").reason, /indexes are all deleted/);
  // children are not candidates: k=1 was not "used up" by an untagged child
  assert.equal(r.evaluation.counts.deleted, 2);
});

test("a tagged manifest referenced by a kept index survives even when no rule keeps it; nested indexes too", () => {
  const r = decide({ rules: [{ ...keepNewest(1), tag_selectors: [{ decoration: "matches", pattern: "v*" }] }] }, [
    artifact("sha256:top", { tags: ["v9"], children: ["sha256:mid"] }),
    artifact("sha256:mid", { tags: ["nightly"], children: ["sha256:leaf"] }),
    artifact("sha256:leaf", {}),
    artifact("sha256:unrelated", { tags: ["nightly-2"] }),
  ]);
  assert.equal(r.get("sha256:mid").action, "retain");
  assert.match(r.get("sha256:mid").reason, /referenced by kept index sha256:top/);
  assert.equal(r.get("sha256:leaf").action, "retain");
  assert.equal(r.get("sha256:unrelated").action, "delete");
});

test("referrers (signatures, SBOMs) are kept with their subject, deleted with it, never ranked", () => {
  const r = decide({ rules: [keepNewest(1)] }, [
    artifact("sha256:new", { tags: ["v2"], pushed: NOW - DAY }),
    artifact("sha256:old", { tags: ["v1"], pushed: NOW - 5 * DAY }),
    // a signature pushed later than everything must not take the k=1 slot
    artifact("sha256:sig-new", { subject: "sha256:new", pushed: NOW }),
    artifact("sha256:sbom-new", { subject: "sha256:new", pushed: NOW, tags: ["sha256-new.sbom"] }),
    artifact("sha256:sig-of-sbom", { subject: "sha256:sbom-new", pushed: NOW }),
    artifact("sha256:sig-old", { subject: "sha256:old", pushed: NOW }),
    artifact("sha256:dangling", { subject: "sha256:gone", pushed: NOW - 99 * DAY }),
  ]);
  assert.equal(r.get("sha256:new").action, "retain");
  assert.equal(r.get("sha256:sig-new").action, "retain");
  assert.equal(r.get("sha256:sbom-new").action, "retain");
  assert.equal(r.get("sha256:sig-of-sbom").action, "retain");
  assert.equal(r.get("sha256:sig-new").role, "referrer");
  assert.equal(r.get("sha256:old").action, "delete");
  assert.equal(r.get("sha256:sig-old").action, "delete");
  assert.match(r.get("sha256:sig-old").reason, /referrer of deleted sha256:old/);
  assert.equal(r.get("sha256:dangling").action, "retain", "subject unknown: keep");
});

test("protected tags always win over rules, also for index children of the protected index", () => {
  const r = decide({ protected: [{ tag: { kind: "regex", pattern: "v\\d+\\.\\d+\\.\\d+" }, repository_selectors: [{ decoration: "matches", pattern: "app" }] }], rules: [keepNewest(0)] }, [
    artifact("sha256:rel", { tags: ["v1.2.3", "latest-old"], children: ["sha256:child"] }),
    artifact("sha256:child", {}),
    artifact("sha256:dev", { tags: ["dev"] }),
  ]);
  assert.equal(r.get("sha256:rel").action, "protected");
  assert.equal(r.get("sha256:child").action, "retain");
  assert.equal(r.get("sha256:dev").action, "delete");
  // the protection is scoped by repository selector: another repository is not protected
  const other = decide({ protected: [{ tag: { pattern: "v*" }, repository_selectors: [{ decoration: "matches", pattern: "app" }] }], rules: [keepNewest(0)] }, [artifact("sha256:rel", { tags: ["v1"] })], "proj/other");
  assert.equal(other.get("sha256:rel").action, "delete");
});

test("caps: a plan deleting more than max_deletions or max_fraction aborts the repository and deletes nothing", () => {
  const candidates = Array.from({ length: 10 }, (_, i) => artifact(`sha256:${i}`, { tags: [`t${i}`], pushed: NOW - i * HOUR }));
  const over = decide({ caps: { max_deletions: 5 }, rules: [keepNewest(2)] }, candidates);
  assert.equal(over.evaluation.outcome, "aborted");
  assert.match(over.evaluation.reason!, /deletes or untags 8 of 10 artifacts, more than caps\.max_deletions=5/);
  assert.equal(deleted(over.evaluation.decisions).length, 0);
  assert.equal(over.get("sha256:9").planned_action, "delete");
  assert.match(over.get("sha256:9").reason, /^aborted: /);
  const fraction = decide({ caps: { max_fraction: 0.5 }, rules: [keepNewest(4)] }, candidates);
  assert.equal(fraction.evaluation.outcome, "aborted");
  assert.equal(fraction.evaluation.counts.deleted, 0);
  const within = decide({ caps: { max_deletions: 8, max_fraction: 0.8 }, rules: [keepNewest(2)] }, candidates);
  assert.equal(within.evaluation.outcome, "evaluated");
  assert.equal(within.evaluation.counts.deleted, 8);
});

test("deletion unit untag: tags are ranked one by one; the artifact goes only when its last tag goes", () => {
  const r = decide({ deletion_unit: "untag", rules: [keepNewest(2)] }, [
    artifact("sha256:multi", {
      tags: [
        { name: "v3", pushed_at: NOW - HOUR, pulled_at: null },
        { name: "v1", pushed_at: NOW - 30 * DAY, pulled_at: null },
      ],
    }),
    artifact("sha256:one", { tags: [{ name: "v2", pushed_at: NOW - 2 * HOUR, pulled_at: null }] }),
    artifact("sha256:gone", { tags: [{ name: "v0", pushed_at: NOW - 40 * DAY, pulled_at: null }] }),
    artifact("sha256:untagged", { pushed: NOW - 50 * DAY }),
  ]);
  assert.equal(r.get("sha256:multi").action, "untag");
  assert.deepEqual(r.get("sha256:multi").untag_tags, ["v1"]);
  assert.equal(r.get("sha256:one").action, "retain");
  assert.equal(r.get("sha256:gone").action, "delete");
  assert.equal(r.get("sha256:untagged").action, "delete");
  // in artifact mode the same catalog keeps multi whole (its newest tag counts)
  const whole = decide({ rules: [keepNewest(2)] }, r.evaluation.decisions.map((d) => artifact(d.digest, { tags: d.tags, pushed: d.pushed_at })));
  assert.equal(whole.get("sha256:multi").action, "retain");
  assert.equal(whole.get("sha256:multi").untag_tags, undefined);
});

test("latestPerSemverLine keeps the N highest patches of every minor line (not the newest pushes)", () => {
  const tags = ["1.0.0", "1.0.1", "1.0.2", "1.0.3", "v1.1.0", "1.1.1", "2.0.0-rc.1", "2.0.0", "latest"];
  const candidates = tags.map((t, i) => artifact(`sha256:${t}`, { tags: [t], pushed: NOW - i * HOUR }));
  const r = decide({ rules: [{ template: "latestPerSemverLine", params: { keep: 2, line: "minor" } }] }, candidates);
  assert.deepEqual(kept(r.evaluation.decisions), ["sha256:1.0.2", "sha256:1.0.3", "sha256:1.1.1", "sha256:2.0.0", "sha256:v1.1.0"].sort());
  assert.equal(r.get("sha256:2.0.0-rc.1").action, "delete", "prereleases are ignored by default");
  assert.equal(r.get("sha256:latest").action, "delete", "non-semver tags are not retained by this rule");
  const major = decide({ rules: [{ template: "latestPerSemverLine", params: { keep: 1, line: "major", include_prereleases: true } }] }, candidates);
  assert.deepEqual(kept(major.evaluation.decisions), ["sha256:1.1.1", "sha256:2.0.0"]);
});

test("inconsistent input (duplicate digest, a tag on two digests) decides nothing: every artifact is an error, none deleted", () => {
  const dup = decide({ rules: [keepNewest(0)] }, [artifact("sha256:a", { tags: ["x"] }), artifact("sha256:a", { tags: ["y"] })]);
  assert.equal(dup.evaluation.outcome, "error");
  assert.match(dup.evaluation.reason!, /digest sha256:a appears twice/);
  assert.ok(dup.evaluation.decisions.every((d) => d.action === "error"));
  const twoDigests = decide({ rules: [keepNewest(0)] }, [artifact("sha256:a", { tags: ["x"] }), artifact("sha256:b", { tags: ["x"] })]);
  assert.equal(twoDigests.evaluation.outcome, "error");
  assert.equal(twoDigests.evaluation.counts.deleted, 0);
  const badTime = decide({ rules: [keepNewest(0)] }, [artifact("sha256:a", { tags: ["x"], pushed: Number.NaN })]);
  assert.equal(badTime.evaluation.outcome, "error");
});

test("an empty repository evaluates to nothing, and k=0 in a touched repository deletes everything (Harbor)", () => {
  assert.equal(decide({ rules: [keepNewest(0)] }, []).evaluation.decisions.length, 0);
  const all = decide({ rules: [keepNewest(0)] }, [artifact("sha256:a", { tags: ["x"] })]);
  assert.deepEqual(deleted(all.evaluation.decisions), ["sha256:a"]);
});

test("a rule that fails while evaluating a repository leaves the whole repository untouched", async () => {
  const { compilePolicy } = await import("../../src/retention/compiled_policy.js");
  const { evaluateRepository } = await import("../../src/retention/evaluate_repository.js");
  const { parsePolicy } = await import("../../src/retention/policy_schema.js");
  const compiled = compilePolicy(parsePolicy({ name: "p", rules: [keepNewest(1), { template: "always", tag_selectors: [{ decoration: "matches", pattern: "x*" }] }] }));
  // simulate a matcher failing at run time (e.g. an engine error) in the second rule
  const failing = { ...compiled, rules: compiled.rules.map((r, i) => (i === 1 ? { ...r, tagSelectors: [{ excludes: false, untagged: false, matcher: { kind: "glob" as const, pattern: "x*", test: () => { throw new Error("engine failure"); } } }] } : r)) };
  const evaluation = evaluateRepository(failing, "proj/app", [artifact("sha256:a", { tags: ["a"] }), artifact("sha256:b", { tags: ["b"], pushed: NOW - 9 * DAY })], NOW);
  assert.equal(evaluation.outcome, "error");
  assert.match(evaluation.reason!, /engine failure/);
  assert.equal(evaluation.counts.deleted, 0);
  assert.ok(evaluation.decisions.every((d) => d.action === "error"));
});

// ---- cosign-style attachments: tags sha256-<hex>.sig / .att / .sbom ----

const dg = (c: string) => `sha256:${c.repeat(64)}`;
const attachmentTag = (digest: string, kind: "sig" | "att" | "sbom" = "sig") => `${digest.replace(":", "-")}.${kind}`;

test("attachments: a .sig tag pushed after everything takes no latestPushedK place; it lives and dies with its subject", () => {
  const [i1, i2, i3] = [dg("1"), dg("2"), dg("3")];
  const r = decide({ rules: [keepNewest(2)] }, [
    artifact(i1, { tags: ["i1"], pushed: NOW - 3 * DAY }),
    artifact(i2, { tags: ["i2"], pushed: NOW - 2 * DAY }),
    artifact(i3, { tags: ["i3"], pushed: NOW - DAY }),
    // cosign's default signature: no OCI subject, only the tag names the subject
    artifact(dg("a"), { tags: [attachmentTag(i3)], pushed: NOW }),
    artifact(dg("b"), { tags: [attachmentTag(i1)], pushed: NOW }),
    artifact(dg("c"), { tags: [attachmentTag(i2, "att"), attachmentTag(i2, "sbom")], pushed: NOW }),
  ]);
  assert.deepEqual(kept(r.evaluation.decisions), [i2, i3, dg("a"), dg("c")].sort());
  assert.deepEqual(deleted(r.evaluation.decisions), [i1, dg("b")].sort());
  assert.equal(r.get(dg("a")).role, "referrer");
  assert.equal(r.get(dg("a")).rule, null);
  assert.equal(r.get(dg("a")).reason, `attachment of ${i3} (cosign .sig tag), kept with its subject`);
  assert.equal(r.get(dg("b")).reason, `attachment of ${i1} (cosign .sig tag), deleted with its subject`);
  assert.equal(r.get(dg("c")).reason, `attachment of ${i2} (cosign .att tag), kept with its subject`);
  assert.equal(r.get(i2).reason, "retained by rules[0] latestPushedK=2");
});

test("attachments are not matched by tag selectors as images, and never count as untagged", () => {
  const [i1, i2] = [dg("1"), dg("2")];
  const catalog = [
    artifact(i1, { tags: ["v1"], pushed: NOW - 2 * DAY }),
    artifact(i2, { tags: ["v2"], pushed: NOW - DAY }),
    artifact(dg("a"), { tags: [attachmentTag(i1)], pushed: NOW }),
  ];
  // a rule meant for signatures selects nothing: the signature follows its subject v1
  const r = decide({ rules: [{ template: "always", tag_selectors: [{ decoration: "matches", pattern: "*.sig" }] }, keepNewest(1)] }, catalog);
  assert.deepEqual(deleted(r.evaluation.decisions), [i1, dg("a")].sort());
  // "excludes v*" selects a tagged artifact that has another tag: an attachment has none that counts
  const ex = decide({ rules: [{ template: "always", tag_selectors: [{ decoration: "excludes", pattern: "v*" }] }, keepNewest(0)] }, catalog);
  assert.deepEqual(deleted(ex.evaluation.decisions), [i1, i2, dg("a")].sort());
  // untagged artifacts selected by default: the attachment is not one of them
  const untagged = decide({ rules: [{ template: "latestPushedK", params: { latestPushedK: 1 }, tag_selectors: [{ decoration: "matches", pattern: "none-*", untagged: true }] }] }, [
    ...catalog, artifact(dg("u"), { pushed: NOW - 3 * DAY }),
  ]);
  assert.equal(untagged.get(dg("u")).action, "retain", "the only untagged candidate");
  assert.equal(untagged.get(dg("a")).action, "delete");
});

test("attachments: only the exact tag shape counts; a subject not in the repository keeps the attachment", () => {
  const i1 = dg("1");
  const hex = i1.slice("sha256:".length);
  const r = decide({ rules: [keepNewest(1)] }, [
    artifact(i1, { tags: ["v1"], pushed: NOW - 9 * DAY }),
    artifact(dg("2"), { tags: ["v2"], pushed: NOW - 8 * DAY }),
    // not attachments: ranked as ordinary images (the newest three take... only one place)
    artifact(dg("x"), { tags: [`sha256-${hex}`], pushed: NOW - 3 * DAY }),
    artifact(dg("y"), { tags: [`sha256-${hex.toUpperCase()}.sig`], pushed: NOW - 2 * DAY }),
    artifact(dg("z"), { tags: [`sha256-${hex.slice(1)}.sig`, `sha256-${hex}.sig.old`], pushed: NOW - DAY }),
    // an attachment of a digest this repository does not hold
    artifact(dg("d"), { tags: [attachmentTag(dg("f"))], pushed: NOW - 99 * DAY }),
  ]);
  assert.equal(r.get(dg("z")).action, "retain");
  assert.equal(r.get(dg("z")).role, "candidate");
  for (const d of [dg("x"), dg("y"), i1, dg("2")]) assert.equal(r.get(d).action, "delete", d);
  assert.equal(r.get(dg("d")).action, "retain");
  assert.equal(r.get(dg("d")).role, "referrer");
  assert.equal(r.get(dg("d")).reason, `attachment of ${dg("f")} (cosign .sig tag) whose subject is not in this repository`);
});

test("attachments: one that also carries an ordinary tag is ranked by that tag and still kept with a kept subject", () => {
  const [i1, i2] = [dg("1"), dg("2")];
  const r = decide({ rules: [keepNewest(1)] }, [
    artifact(i1, { tags: ["v1"], pushed: NOW - 2 * DAY }),
    artifact(i2, { tags: ["v2"], pushed: NOW - DAY }),
    artifact(dg("a"), { tags: ["signed-v2", attachmentTag(i2)], pushed: NOW - 3 * DAY }),
    artifact(dg("b"), { tags: ["signed-v1", attachmentTag(i1)], pushed: NOW - 3 * DAY }),
  ]);
  assert.equal(r.get(dg("a")).role, "candidate");
  assert.equal(r.get(dg("a")).action, "retain");
  assert.equal(r.get(dg("a")).reason, `attachment of ${i2} (cosign .sig tag), kept with its subject`);
  assert.equal(r.get(dg("b")).action, "delete", "neither its own tag nor its subject keeps it");
  // the ordinary tag competes like any image: here it is the newest
  const newest = decide({ rules: [keepNewest(1)] }, [
    artifact(i1, { tags: ["v1"], pushed: NOW - 2 * DAY }),
    artifact(dg("b"), { tags: ["signed-v1", attachmentTag(i1)], pushed: NOW }),
  ]);
  assert.equal(newest.get(dg("b")).action, "retain");
  assert.equal(newest.get(i1).action, "delete");
});

test("attachments of index children, of referrers and of attachments follow the chain; in untag mode they are never units", () => {
  const [idx, child, sig, sigOfSig, oldIdx, oldChild, oldSig] = [dg("1"), dg("2"), dg("3"), dg("4"), dg("5"), dg("6"), dg("7")];
  const catalog = [
    artifact(idx, { tags: ["v2"], pushed: NOW - DAY, children: [child] }),
    artifact(child, { pushed: NOW - DAY }),
    artifact(sig, { tags: [attachmentTag(child)], pushed: NOW }),
    artifact(sigOfSig, { tags: [attachmentTag(sig)], pushed: NOW }),
    artifact(oldIdx, { tags: ["v1"], pushed: NOW - 5 * DAY, children: [oldChild] }),
    artifact(oldChild, { pushed: NOW - 5 * DAY }),
    artifact(oldSig, { tags: [attachmentTag(oldChild, "att")], pushed: NOW }),
  ];
  for (const deletion_unit of ["artifact", "untag"] as const) {
    const r = decide({ deletion_unit, rules: [keepNewest(1)] }, catalog);
    assert.deepEqual(kept(r.evaluation.decisions), [idx, child, sig, sigOfSig].sort(), deletion_unit);
    assert.deepEqual(deleted(r.evaluation.decisions), [oldIdx, oldChild, oldSig].sort(), deletion_unit);
    assert.ok(r.evaluation.decisions.every((d) => d.action !== "untag"), "an attachment tag is never untagged");
  }
});
