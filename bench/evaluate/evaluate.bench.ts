// "evaluate" (issue 4): read every repository's candidates from a catalog seeded by SQL and
// evaluate them with the pure engine, as the worker's decision step does, in dry run (no
// decision rows yet, nothing deleted).
//
// Rows of the table:
//  - ebb, set-based, on 1/4 of the repositories and on all of them (same artifacts per
//    repository): throughput, and peak RSS that must not grow with the number of repositories;
//  - the Harbor-style peer: same evaluation, candidates read 10 per page;
// ratio = ebb throughput / peer throughput, both measured in this run on the same database.
import pg from "pg";
import { evaluateRepository } from "../../src/retention/evaluate_repository.js";
import type { Benchmark, ResultTable } from "../support/benchmark.js";
import { mib, startMemorySampler, type MemoryPeaks } from "../support/memory_sampler.js";
import { fmtCount, fmtRate, fmtRatio, fmtSeconds } from "../support/report.js";
import { compiledBenchPolicy } from "./bench_policy.js";
import { readCandidatesPaged, readCandidatesSetBased, type ReadResult } from "./candidate_readers.js";
import { runRetentionExecution, type ExecutionResult } from "./retention_execution.js";
import { EBB_DEFAULTS } from "../support/ebb_defaults.js";

const CONCURRENCY = EBB_DEFAULTS.workerConcurrency; // the peer gets the same
const REPOSITORY_PAGE = 1000;
const TARGET_SECONDS = 60;

type Reader = (pool: pg.Pool, repositoryId: number) => Promise<ReadResult>;

interface VariantResult {
  label: string;
  repositories: number;
  artifacts: number;
  queries: number;
  seconds: number;
  deleted: number;
  retained: number;
  errors: number;
  memory: MemoryPeaks;
}

/** Repositories with id <= maxId, read in keyset pages (the list itself never sits in memory whole). */
async function* repositories(pool: pg.Pool, maxId: number): AsyncGenerator<{ id: number; name: string }> {
  let after = 0;
  for (;;) {
    const { rows } = await pool.query<{ id: string; name: string }>(
      "select id, name from ebb.repositories where id > $1 and id <= $2 order by id limit $3",
      [after, maxId, REPOSITORY_PAGE],
    );
    for (const r of rows) yield { id: Number(r.id), name: r.name };
    if (rows.length < REPOSITORY_PAGE) return;
    after = Number(rows[rows.length - 1]!.id);
  }
}

async function runVariant(label: string, pool: pg.Pool, reader: Reader, maxId: number, now: number): Promise<VariantResult> {
  const compiled = compiledBenchPolicy();
  const memory = startMemorySampler();
  const result: VariantResult = {
    label,
    repositories: 0,
    artifacts: 0,
    queries: 0,
    seconds: 0,
    deleted: 0,
    retained: 0,
    errors: 0,
    memory: { peakRss: 0, peakHeapUsed: 0, startRss: 0 },
  };
  const started = performance.now();
  const source = repositories(pool, maxId);
  let next = Promise.resolve();
  // the generator is not re-entrant: hand out repositories one at a time
  const take = () => {
    const p = next.then(() => source.next());
    next = p.then(() => undefined);
    return p;
  };
  const worker = async () => {
    for (;;) {
      const item = await take();
      if (item.done) return;
      const { candidates, queries } = await reader(pool, item.value.id);
      const evaluation = evaluateRepository(compiled, item.value.name, candidates, now);
      result.repositories++;
      result.artifacts += candidates.length;
      result.queries += queries;
      result.deleted += evaluation.counts.deleted;
      result.retained += evaluation.counts.retained;
      result.errors += evaluation.counts.errors;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  result.seconds = (performance.now() - started) / 1000;
  result.memory = memory.stop();
  return result;
}

export const evaluateBenchmark: Benchmark = {
  name: "evaluate",
  description: "read candidates per repository + pure evaluation, 1M artifacts / 20k repositories, vs Harbor-style 10 per page",
  async run(ctx) {
    const full = ctx.scale === "full";
    const shape = { repositories: full ? 20_000 : 200, artifactsPerRepository: 50 };
    const quarter = shape.repositories / 4;
    const db = await ctx.seededDatabase("evaluate", shape);
    const now = db.seed.now.getTime();
    const pool = new pg.Pool({ connectionString: db.url, max: CONCURRENCY + 1, application_name: "bench:evaluate" });
    pool.on("error", () => {});
    try {
      // warm the OS cache the same way for every variant
      await pool.query("select count(*), sum(length(digest)) from ebb.artifacts");
      await pool.query("select count(*), sum(length(name)) from ebb.tags");
      // and warm the JIT and prepared statements of both readers (not reported)
      await runVariant("warm-up", pool, readCandidatesSetBased, Math.min(500, quarter), now);
      await runVariant("warm-up", pool, readCandidatesPaged, Math.min(500, quarter), now);
      ctx.log(`ebb set-based over ${quarter} repositories ...`);
      const small = await runVariant("ebb: 1 set-based query per repository", pool, readCandidatesSetBased, quarter, now);
      ctx.log(`ebb set-based over ${shape.repositories} repositories ...`);
      const ebb = await runVariant("ebb: 1 set-based query per repository", pool, readCandidatesSetBased, shape.repositories, now);
      ctx.log(`Harbor-style 10 per page over ${shape.repositories} repositories ...`);
      const peer = await runVariant("peer: Harbor-style, 10 candidates per page", pool, readCandidatesPaged, shape.repositories, now);

      await pool.end();
      // end to end: the retention execution (dry run) by a real ebb worker process, decision rows written
      let e2e: ExecutionResult | Error;
      try {
        ctx.log(`retention execution (dry run) over ${shape.repositories} repositories by one ebb worker process ...`);
        e2e = await runRetentionExecution(db, { poolSize: EBB_DEFAULTS.poolSize, workerConcurrency: CONCURRENCY, timeoutMs: (full ? 3 : 2) * 60_000, log: ctx.log });
      } catch (err) {
        e2e = err as Error;
        ctx.log(`retention execution FAILED: ${e2e.message}`);
      }

      const rate = (r: VariantResult) => r.artifacts / r.seconds;
      const row = (r: VariantResult, ratio: string) => [
        r.label,
        fmtCount(r.repositories),
        fmtCount(r.artifacts),
        fmtCount(r.queries),
        fmtSeconds(r.seconds),
        fmtRate(rate(r)),
        `${fmtCount(r.deleted)} / ${fmtCount(r.retained)} / ${r.errors}`,
        mib(r.memory.peakRss),
        mib(r.memory.peakHeapUsed),
        ratio,
      ];
      const rssGrowth = ebb.memory.peakRss / small.memory.peakRss;
      const notes = [
        `concurrency ${CONCURRENCY} (repositories evaluated at once) for every row; policy: latestPushedK 10, nDaysSinceLastPull 7 on release-*, latestPerSemverLine 2 per minor, regex always-keep, a protected tag, cap 95%.`,
        `ratio = ebb artifacts/s / peer artifacts/s on the same ${fmtCount(shape.repositories)} repositories: ${fmtRatio(rate(ebb) / rate(peer))}.`,
        `memory in the number of repositories: peak RSS ${mib(small.memory.peakRss)} at ${fmtCount(small.repositories)} repositories vs ${mib(ebb.memory.peakRss)} at ${fmtCount(ebb.repositories)} (x${rssGrowth.toFixed(2)} for x4 repositories) - ${rssGrowth < 1.25 ? "flat" : "NOT flat"}.`,
        full
          ? `target (issue 4): 1,000,000 artifacts under ${TARGET_SECONDS} s: ${fmtSeconds(ebb.seconds)} s - ${ebb.seconds < TARGET_SECONDS ? "met" : "MISSED"}.`
          : "small scale: a smoke run, not the recorded size.",
      ];
      const tables: ResultTable[] = [
        {
          title: `evaluate: ${fmtCount(shape.repositories * shape.artifactsPerRepository)} artifacts in ${fmtCount(shape.repositories)} repositories, dry run (read + pure evaluation)`,
          head: ["reader", "repositories", "artifacts", "queries", "time s", "artifacts/s", "delete / retain / error", "peak RSS", "peak heap", "vs peer"],
          rows: [
            row(small, ""),
            row(ebb, fmtRatio(rate(ebb) / rate(peer))),
            row(peer, "1.00x"),
            e2e instanceof Error
              ? ["ebb retention execution, dry run, end to end", "", "", "", "", "", `FAILED: ${e2e.message.split("\n")[0]}`, "", "", ""]
              : [
                  `ebb retention execution, dry run, end to end (1 worker process, decision rows written)${e2e.finished ? "" : ` - NOT FINISHED after ${fmtSeconds(e2e.seconds)} s: progress so far`}`,
                  e2e.finished ? `${fmtCount(e2e.tasks)} tasks` : Object.entries(e2e.taskStatus).map(([k, v]) => `${k} ${fmtCount(v)}`).join(", "),
                  fmtCount(e2e.artifacts),
                  "",
                  fmtSeconds(e2e.seconds),
                  fmtRate(e2e.artifacts / e2e.seconds),
                  `${fmtCount(e2e.deleteDecisions)} delete of ${fmtCount(e2e.decisions)} decision rows`,
                  `${mib(e2e.peakRss)} (worker)`,
                  "",
                  fmtRatio(e2e.artifacts / e2e.seconds / rate(peer)),
                ],
          ],
          notes: [
            ...notes,
            e2e instanceof Error
              ? "the end-to-end retention execution failed (see the row)."
              : `end to end: execution ${e2e.status}${e2e.error ? ` (${e2e.error})` : ""}, tasks ${Object.entries(e2e.taskStatus).map(([k, v]) => `${k} ${fmtCount(v)}`).join(", ")}; peak connections of the worker ${e2e.connections.ebbTotal} (pool 10); time = execution created -> ended (database clock)${full ? `; target 60 s: ${e2e.seconds < TARGET_SECONDS ? "met" : "MISSED"}` : ""}.`,
          ],
        },
      ];
      return tables;
    } finally {
      if (!pool.ended) await pool.end();
    }
  },
};
