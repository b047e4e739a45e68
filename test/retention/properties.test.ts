// Random policies over random catalogs: the evaluator never deletes what a rule retains
// (recomputed here by a naive, independent implementation of each rule), never touches a
// repository no rule selects, never breaks the artifact graph, and honours caps.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { compilePolicy } from "../../src/retention/compiled_policy.js";
import type { Decision } from "../../src/retention/decision.js";
import { evaluate } from "../../src/retention/evaluate.js";
import { NOW } from "./support/catalog.js";
import { attachmentSubject, catalogArb, policyArb, referenceRetained, ruleSelectsRepo } from "./support/random_policies.js";

test("random policies and catalogs: rule-retained artifacts survive, unselected repositories are untouched, the graph holds, caps hold", () => {
  fc.assert(
    fc.property(policyArb, catalogArb, (policy, catalog) => {
      const result = evaluate(compilePolicy(policy), catalog, NOW);
      const byKey = new Map<string, Decision>(result.decisions.map((d) => [`${d.repository}@${d.digest}`, d]));
      assert.equal(result.decisions.length, catalog.length, "one decision per artifact");
      const enabled = policy.rules.filter((r) => !r.disabled);
      for (const repo of new Set(catalog.map((c) => c.repository))) {
        const repoCandidates = catalog.filter((c) => c.repository === repo);
        const evaluation = result.repositories.find((r) => r.repository === repo)!;
        const rules = enabled.filter((r) => ruleSelectsRepo(r, repo));
        if (rules.length === 0) {
          assert.equal(evaluation.outcome, "untouched", repo);
          assert.ok(evaluation.decisions.every((d) => d.action === "retain"), "untouched repository: nothing deleted");
          continue;
        }
        assert.notEqual(evaluation.outcome, "untouched");
        if (evaluation.outcome === "aborted") {
          assert.ok(evaluation.decisions.every((d) => d.action !== "delete" && d.action !== "untag"), "aborted: nothing deleted");
          assert.ok(evaluation.decisions.filter((d) => d.planned_action).length > (policy.caps.max_deletions ?? Infinity));
          continue;
        }
        const destructive = evaluation.decisions.filter((d) => d.action === "delete" || d.action === "untag").length;
        assert.ok(destructive <= (policy.caps.max_deletions ?? Infinity), "cap respected");
        // every artifact a rule retains (artifact unit) is never deleted
        if (policy.deletion_unit === "artifact") {
          for (const rule of rules) {
            for (const digest of referenceRetained(rule, repoCandidates, NOW)) {
              const d = byKey.get(`${repo}@${digest}`)!;
              assert.notEqual(d.action, "delete", `${repo}@${digest} retained by ${rule.template} but deleted`);
            }
          }
        }
        for (const c of repoCandidates) {
          const d = byKey.get(`${repo}@${c.digest}`)!;
          // protected tags are never deleted nor untagged
          if (policy.protected.length > 0 && c.tags.some((t) => t.name === "latest")) assert.equal(d.action, "protected");
          // a kept index keeps its children; a kept subject keeps its referrers
          if (d.action !== "delete") {
            for (const child of c.children ?? []) {
              const cd = byKey.get(`${repo}@${child}`);
              if (cd) assert.notEqual(cd.action, "delete", `child ${child} of kept ${c.digest} deleted`);
            }
            for (const r of repoCandidates.filter((x) => x.subject === c.digest)) {
              assert.notEqual(byKey.get(`${repo}@${r.digest}`)!.action, "delete", `referrer ${r.digest} of kept ${c.digest} deleted`);
            }
            for (const r of repoCandidates.filter((x) => x.tags.some((t) => attachmentSubject(t.name) === c.digest))) {
              assert.notEqual(byKey.get(`${repo}@${r.digest}`)!.action, "delete", `attachment ${r.digest} of kept ${c.digest} deleted`);
            }
          }
          // an attachment (all its tags are attachment tags) is never ranked by a rule
          if (c.tags.length > 0 && c.tags.every((t) => attachmentSubject(t.name) !== null)) {
            assert.equal(d.role, "referrer", `${c.digest} is an attachment`);
            assert.equal(d.rule, null, `${c.digest} is an attachment: no rule retains it`);
          }
        }
      }
      // determinism: input order does not change any decision
      const reversed = evaluate(compilePolicy(policy), [...catalog].reverse(), NOW);
      for (const d of reversed.decisions) {
        const original = byKey.get(`${d.repository}@${d.digest}`)!;
        assert.equal(d.action, original.action);
        assert.equal(d.rule, original.rule);
      }
    }),
    { numRuns: 400 },
  );
});

test("random re-tags: tags pushed onto existing artifacts change nothing that count rules keep", () => {
  const countRules = policyArb.filter((p) => p.deletion_unit === "artifact" && p.rules.every((r) => r.template !== "nDaysSinceLastPush"));
  fc.assert(
    fc.property(countRules, catalogArb, fc.integer({ min: 0, max: 30 * 24 }), (policy, catalog, hoursAgo) => {
      const before = evaluate(compilePolicy(policy), catalog, NOW);
      // every tag (re)pushed onto its digest at one later time; the artifacts' own pushes unchanged
      const retagged = catalog.map((c) => ({
        ...c,
        // (an artifact without its own push ranks by its earliest tag push: left as it is)
        tags: c.tags.map((t) => ({ ...t, pushed_at: c.pushed_at === null ? t.pushed_at : NOW - hoursAgo * 3_600_000 })),
      }));
      const after = evaluate(compilePolicy(policy), retagged, NOW);
      for (let i = 0; i < before.decisions.length; i++) {
        assert.equal(after.decisions[i]!.action, before.decisions[i]!.action, `${before.decisions[i]!.digest}`);
      }
    }),
    { numRuns: 300 },
  );
});
