// 1,000,000 artifacts in 20,000 repositories must evaluate well under 60 s on a 2-core machine.
// Repositories are generated and evaluated one at a time, the way the worker calls
// evaluateRepository per repository task, so memory stays flat in the number of repositories.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Candidate } from "../../src/retention/candidate.js";
import { evaluateRepository } from "../../src/retention/evaluate_repository.js";
import { compiledBenchPolicy } from "../../bench/evaluate/bench_policy.js";
import { HOUR, NOW } from "./support/catalog.js";

const REPOSITORIES = 20_000;
const PER_REPOSITORY = 50;

function repositoryCandidates(r: number): Candidate[] {
  const out: Candidate[] = new Array(PER_REPOSITORY);
  for (let i = 0; i < PER_REPOSITORY; i++) {
    const pushed = NOW - ((r * 7 + i * 13) % 2000) * HOUR;
    const tagName = i % 5 === 0 ? `release-${i}` : i % 5 === 1 ? `v1.${i % 7}.${i}` : `build-${r}-${i}`;
    out[i] = {
      digest: `sha256:${r.toString(16).padStart(8, "0")}${i.toString(16).padStart(56, "0")}`,
      tags: i % 10 === 9 ? [] : [{ name: tagName, pushed_at: pushed, pulled_at: null }],
      pushed_at: pushed,
      pulled_at: i % 3 === 0 ? pushed + HOUR : null,
    };
  }
  return out;
}

test("1,000,000 candidates across 20,000 repositories evaluate in well under 60 s", () => {
  // the same policy the evaluate benchmark uses (every template family, a regex, a cap)
  const compiled = compiledBenchPolicy();
  const rssBefore = process.memoryUsage().rss;
  let peakRss = rssBefore;
  let decisions = 0;
  let deletes = 0;
  const started = performance.now();
  for (let r = 0; r < REPOSITORIES; r++) {
    const evaluation = evaluateRepository(compiled, `proj${r % 100}/repo-${r}`, repositoryCandidates(r), NOW);
    decisions += evaluation.decisions.length;
    deletes += evaluation.counts.deleted;
    if (r % 2000 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(
    `# ${decisions} candidates in ${seconds.toFixed(1)} s (${Math.round(decisions / seconds)}/s), ${deletes} deletes, rss ${Math.round(rssBefore / 2 ** 20)} -> peak ${Math.round(peakRss / 2 ** 20)} MiB\n`,
  );
  assert.equal(decisions, REPOSITORIES * PER_REPOSITORY);
  assert.ok(deletes > 0 && deletes < decisions);
  assert.ok(seconds < 30, `took ${seconds.toFixed(1)} s`);
});
