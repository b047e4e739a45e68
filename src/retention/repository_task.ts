// One retention task = one repository of one execution, as one path:
//   read the repository fresh from the registry and bring the catalog up to date
//   (src/catalog/fresh_read.ts; a dry run with dry_run_reads = 'catalog' reads the catalog as
//   it is instead) -> candidates of that read (one set-based query) -> refuse an incomplete
//   read -> evaluate (pure) -> write every decision (one batched insert) -> abort/error: fail,
//   delete nothing -> dry run: stop here -> re-check the tags right before the deletion phase,
//   skipping any digest that gained a tag -> delete the pending ones (deletion.ts) -> counts
//   from the rows.
//
// Idempotent: decisions are unique per (execution, repository, digest). A task re-run after a
// crash or a retry finds its rows and does not evaluate again: it re-checks the tags and makes
// the registry calls still 'pending' (a manifest deleted just before the crash answers 404:
// already_deleted).
import type pg from "pg";
import { freshRead, IncompleteRead, candidatesOfRead, recheckTags } from "../catalog/fresh_read.js";
import type { BookkeepingOptions } from "../db/bookkeeping_statement.js";
import { PermanentTaskError, type TaskControl } from "../executions/kind.js";
import type { RegistryClient } from "../registry/client.js";
import { readRepositoryCandidates, type RepositoryRead } from "./candidates_query.js";
import {
  countNewDecisions, countTaskDecisions, decidedTags, hasDecisions, insertDecisions, pendingCalls, recordSkipped, type TaskDecisionCounts,
} from "./decisions_store.js";
import { executeDeletions } from "./deletion.js";
import { evaluateRepository } from "./evaluate_repository.js";
import type { RetentionRun } from "./retention_run.js";

export interface RepositoryTaskDeps {
  pool: pg.Pool;
  run: RetentionRun;
  taskId: number;
  repositoryId: number;
  /** the repository's name (the task key) */
  repositoryName: string;
  /** 1 on the task's first run: no earlier attempt can have written decisions */
  attempt: number;
  control: Pick<TaskControl, "checkpoint" | "log" | "counts" | "details"> & Partial<Pick<TaskControl, "signal">>;
  /** the registry's client, for the fresh read and the deletions; the caller closes what it opened */
  openRegistry: () => Promise<RegistryClient>;
  /** registry calls in flight at once */
  deleteConcurrency: number;
  /** the worker's bookkeeping settings: prepared reads; a dry run's decisions committed asynchronously */
  bookkeeping: BookkeepingOptions;
}

async function earlierVerdict(pool: pg.Pool, taskId: number): Promise<string | null> {
  const { rows } = await pool.query<{ reason: string }>(
    `select reason from ebb.decisions where task_id = $1 and (planned_action is not null or action = 'error') limit 1`,
    [taskId],
  );
  return rows[0]?.reason ?? null;
}

async function saveCounts(deps: RepositoryTaskDeps): Promise<{ failed: number; unsupported: number; total: number }> {
  const c = await countTaskDecisions(deps.pool, deps.run.executionId, deps.repositoryId);
  setCounts(deps, c);
  return c;
}

function setCounts(deps: RepositoryTaskDeps, c: TaskDecisionCounts): void {
  deps.control.counts.total = c.total;
  deps.control.counts.retained = c.retained;
  deps.control.counts.deleted = c.deleted;
  deps.control.counts.errors = c.errors;
  if (c.unsupported > 0) deps.control.details["untag_unsupported"] = c.unsupported;
  if (c.failed > 0) deps.control.details["failed_deletions"] = c.failed;
  if (c.pending > 0) deps.control.details["pending"] = c.pending;
  if (c.skipped > 0) deps.control.details["skipped_deletions"] = c.skipped;
}

export async function runRepositoryTask(deps: RepositoryTaskDeps): Promise<void> {
  const { pool, run, control } = deps;
  let client: RegistryClient | undefined;
  const registry = async () => (client ??= await deps.openRegistry());
  control.details["dry_run"] = run.dryRun;
  control.details["repository"] = deps.repositoryName;
  if (deps.attempt > 1 && (await hasDecisions(pool, run.executionId, deps.repositoryId))) {
    control.log("info", "decisions already written by an earlier attempt: resuming their registry calls");
    const verdict = await earlierVerdict(pool, deps.taskId);
    if (verdict !== null) {
      await saveCounts(deps);
      throw new PermanentTaskError(verdict);
    }
  } else {
    const fromRegistry = !(run.dryRun && run.dryRunReads === "catalog");
    control.details["read"] = fromRegistry ? "registry" : "catalog";
    let read: RepositoryRead;
    if (fromRegistry) {
      const fresh = await readFresh(deps, await registry());
      if (fresh === "gone") return;
      read = fresh;
    } else {
      read = await readRepositoryCandidates(pool, deps.repositoryId, deps.bookkeeping.prepared);
      await showCatalogAge(deps);
    }
    const repo = read.repository;
    if (!repo || repo.deleted_at !== null) {
      control.details["outcome"] = "gone";
      control.log("info", `repository ${deps.repositoryId} is no longer in the catalog: nothing to do`);
      return;
    }
    if (repo.stale) {
      const reason = `repository ${repo.name} is STALE (${repo.stale_reason ?? "no reason recorded"}): nothing decided, nothing deleted; a successful sync clears it`;
      control.details["outcome"] = "stale";
      throw new PermanentTaskError(reason);
    }
    if (repo.uninspected > 0 && !fromRegistry) {
      // Known only from push events: a signature or SBOM would look like a plain untagged
      // artifact and an index's children would be unknown. Same snapshot as the read above.
      const reason = `repository ${repo.name} holds ${repo.uninspected} artifact(s) whose manifests ebb has not read yet (known only from push events: referrers and index children unknown): nothing decided, nothing deleted; a sync reads them (ebb sync <registry> ${repo.name}), or let the dry run read the registry (dry_run_reads = 'registry')`;
      control.details["outcome"] = "uninspected";
      throw new PermanentTaskError(reason);
    }
    const evaluation = evaluateRepository(run.compiled, repo.name, read.candidates, run.evaluatedAt);
    control.details["outcome"] = evaluation.outcome;
    if (evaluation.reason) control.details["reason"] = evaluation.reason;
    const mediaTypes = new Map(read.candidates.map((c) => [c.digest, c.media_type]));
    const inserted = await insertDecisions(pool, {
      executionId: run.executionId, taskId: deps.taskId, repositoryId: deps.repositoryId,
      rulePositions: run.rulePositions, dryRun: run.dryRun, mediaTypes, asyncCommit: deps.bookkeeping.asyncCommit, firstAttempt: deps.attempt === 1,
    }, evaluation.decisions);
    control.log("info", `${repo.name}: ${evaluation.outcome}, ${evaluation.counts.total} artifacts, ${evaluation.counts.deleted} to delete, ${evaluation.counts.untagged} to untag${run.dryRun ? " (dry run)" : ""}`);
    if (evaluation.outcome === "aborted" || evaluation.outcome === "error") {
      await saveCounts(deps);
      throw new PermanentTaskError(`${evaluation.outcome === "aborted" ? "aborted" : "error"}: ${evaluation.reason ?? "unknown"}; nothing deleted`);
    }
    if (run.dryRun && inserted === evaluation.decisions.length) {
      // every row is this run's own (none left by an earlier attempt): count them here, by
      // the same rules as countTaskDecisions, without reading them back
      setCounts(deps, countNewDecisions(evaluation.decisions, run.dryRun));
      return;
    }
  }

  if (run.dryRun) {
    await saveCounts(deps);
    return;
  }
  let calls = await pendingCalls(pool, deps.taskId);
  try {
    if (calls.some((c) => c.action === "delete")) calls = await skipChanged(deps, await registry(), calls);
    if (calls.length > 0) {
      await executeDeletions({
        pool, registry: await registry(), repository: deps.repositoryName, stopSignal: control.signal,
        concurrency: deps.deleteConcurrency, checkpoint: () => control.checkpoint(), log: (l, m) => control.log(l, m),
      }, calls);
    }
  } finally {
    // whatever happened (stop, database error), the counts say what was done
    await saveCounts(deps).catch(() => {});
  }
  const c = await saveCounts(deps);
  if (c.failed > 0) {
    throw new PermanentTaskError(`${c.failed} deletion(s) failed (see ebb.decisions outcome 'failed'); the others went on`);
  }
}

/** Reads of the registry per task when the catalog changed under a read (see readFresh). */
const FRESH_READS = 3;

/**
 * The repository read from the registry now, written to the catalog, and the candidates of
 * that read; "gone" when the registry no longer has it. An incomplete read refuses the
 * repository (nothing decided, nothing deleted). When the catalog changed while it was read -
 * a manifest the read found tagged removed meanwhile by another writer, or artifacts known
 * from push events that arrived after the read began (a referrer pushed by digest among them
 * could point at a candidate) - it is read again, up to FRESH_READS times; artifacts that keep
 * arriving are then left out (pushed during the task: not decided on), a manifest still missing
 * fails the attempt (retried).
 */
async function readFresh(deps: RepositoryTaskDeps, client: RegistryClient): Promise<RepositoryRead | "gone"> {
  const { control } = deps;
  for (let attempt = 1; ; attempt++) {
    const started = performance.now();
    let fresh;
    try {
      fresh = await freshRead(deps.pool, client, deps.run.registryId, deps.repositoryName);
    } catch (err) {
      if (!(err instanceof IncompleteRead)) throw err;
      control.details["outcome"] = "unread";
      throw new PermanentTaskError(`repository ${deps.repositoryName} could not be read completely from the registry (${err.message}): nothing decided, nothing deleted`);
    }
    const { snapshot, counts } = fresh;
    control.details["fresh_read"] = {
      tags: snapshot.tags.size, manifests_read: snapshot.newArtifacts.size + snapshot.inspectedArtifacts.size,
      artifacts_added: counts.artifactsAdded, artifacts_removed: counts.artifactsRemoved, tags_changed: counts.tagsUpserted + counts.tagsRemoved,
      registry_ms: Math.round(fresh.registryMs), ms: Math.round(performance.now() - started), reads: attempt,
    };
    if (!snapshot.exists) {
      control.details["outcome"] = "gone";
      control.log("info", `${deps.repositoryName}: the registry no longer has this repository: nothing to do`);
      return "gone";
    }
    const read = await readRepositoryCandidates(deps.pool, deps.repositoryId, deps.bookkeeping.prepared, true);
    const ofRead = candidatesOfRead(read.candidates, fresh);
    const arrived = read.repository?.uninspected ?? 0;
    if ((ofRead.missing.length > 0 || arrived > 0) && attempt < FRESH_READS) {
      control.log("info", `${deps.repositoryName}: the catalog changed while it was read (${ofRead.missing.length} tagged manifest(s) removed, ${arrived} pushed): reading again`);
      continue;
    }
    if (ofRead.missing.length > 0) {
      // a transient failure: the task is retried and reads again
      throw new Error(`the catalog lost ${ofRead.missing.length} tagged manifest(s) of ${deps.repositoryName} while it was read (${ofRead.missing.slice(0, 3).join(", ")})`);
    }
    const left = read.candidates.length - ofRead.candidates.length + arrived;
    if (left > 0) control.log("info", `${deps.repositoryName}: ${left} artifact(s) reached the catalog after the read: not decided on`);
    return { repository: read.repository, candidates: ofRead.candidates };
  }
}

/** A dry run on the catalog as it is: when it was last brought up to date, in the log and details. */
async function showCatalogAge(deps: RepositoryTaskDeps): Promise<void> {
  const { rows } = await deps.pool.query<{ synced_at: Date | null; age_s: number | null }>(
    `select last_synced_at as synced_at, extract(epoch from now() - last_synced_at)::float8 as age_s
       from ebb.repositories where id = $1`,
    [deps.repositoryId],
  );
  const row = rows[0];
  const age = row?.age_s == null ? null : Math.round(row.age_s);
  deps.control.details["catalog_synced_at"] = row?.synced_at ?? null;
  deps.control.details["catalog_age_seconds"] = age;
  deps.control.log("info", `${deps.repositoryName}: dry run on the catalog as it is (dry_run_reads = 'catalog'), last read from the registry ${age === null ? "never" : `${age} s ago`}; push events since are included`);
}

/**
 * Right before the deletion phase: the tags as the registry has them now against those the
 * decisions saw; deletions of digests that gained a tag (or a newly tagged index or referrer
 * pointing at them) are recorded as 'skipped' with the reason and not made. An incomplete
 * re-check skips every deletion and refuses the repository.
 */
async function skipChanged(deps: RepositoryTaskDeps, client: RegistryClient, calls: Awaited<ReturnType<typeof pendingCalls>>) {
  const { pool, run, control } = deps;
  const deleting = calls.filter((c) => c.action === "delete");
  const decided = await decidedTags(pool, run.executionId, deps.repositoryId);
  let recheck;
  try {
    recheck = await recheckTags(client, deps.repositoryName, decided, new Set(deleting.map((c) => c.digest)));
  } catch (err) {
    if (!(err instanceof IncompleteRead)) throw err;
    const reason = `the tags could not be re-read right before deleting (${err.message}): not deleted`;
    await recordSkipped(pool, deleting.map((c) => ({ id: c.id, reason })));
    control.details["outcome"] = "unread";
    throw new PermanentTaskError(`repository ${deps.repositoryName}: ${reason}; nothing deleted`);
  }
  const skipped = deleting.filter((c) => recheck.skip.has(c.digest)).map((c) => ({ id: c.id, reason: recheck.skip.get(c.digest)! }));
  if (skipped.length > 0) {
    await recordSkipped(pool, skipped);
    for (const s of skipped) control.log("warn", `${deps.repositoryName}: decision ${s.id} ${s.reason}`);
  }
  control.details["tag_recheck"] = { tags: recheck.tags, skipped: skipped.length };
  const skippedIds = new Set(skipped.map((s) => s.id));
  return calls.filter((c) => !skippedIds.has(c.id));
}
