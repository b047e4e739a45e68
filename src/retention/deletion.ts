// The registry calls of one repository task: the decisions still 'pending', made with bounded
// concurrency, a stop checkpoint before every call (Harbor cannot stop mid-deletion) and the
// stop signal checked again right before each request is sent (retries included), and each
// answer recorded on its decision row as it comes.
//
// Order, so that stopping (or failing) halfway never leaves a retained thing pointing at
// nothing: referrers first (a signature goes before its subject), then indexes, then the other
// candidates, then untagged index children (an index goes before its platform manifests).
// A phase starts when the previous one has ended.
//
// Untag (deletion unit "untag", some tags of a manifest go while others stay): the OCI
// distribution API of docker-registry 2.x has no tag deletion (DELETE /v2/<name>/manifests/<tag>
// is refused), so no call is made and the decision's outcome is 'unsupported' with the reason;
// the manifest and all its tags stay. When the LAST tag of a manifest goes, the evaluator
// decides 'delete' and the manifest is deleted like any other.
import pLimit from "p-limit";
import type pg from "pg";
import { StopRequested, type LogLevel } from "../executions/kind.js";
import type { DeleteOutcome } from "../registry/client.js";
import { recordOutcome, type PendingCall } from "./decisions_store.js";

export const UNTAG_UNSUPPORTED =
  "untag unsupported by the registry: the distribution API cannot remove one tag of a manifest that keeps other tags; nothing was changed";

export interface DeletionDeps {
  pool: pg.Pool;
  registry: { deleteManifest(repository: string, digest: string, opts?: { beforeSend?: () => void }): Promise<DeleteOutcome> };
  repository: string;
  /** registry calls in flight at once for this repository */
  concurrency: number;
  /** throws StopRequested when the execution must stop */
  checkpoint(): Promise<void>;
  /** aborted once a stop is known to the task (no statement): checked right before each DELETE is sent */
  stopSignal?: AbortSignal;
  log(level: LogLevel, message: string): void;
}

export interface DeletionResult {
  deleted: number;
  alreadyDeleted: number;
  failed: number;
  unsupported: number;
}

function phaseOf(c: PendingCall): number {
  if (c.role === "referrer") return 0;
  if (c.role === "index_child") return 3;
  return c.is_index ? 1 : 2;
}

export async function executeDeletions(deps: DeletionDeps, calls: readonly PendingCall[]): Promise<DeletionResult> {
  const result: DeletionResult = { deleted: 0, alreadyDeleted: 0, failed: 0, unsupported: 0 };
  for (const call of calls) {
    if (call.action !== "untag") continue;
    await recordOutcome(deps.pool, call.id, "unsupported", UNTAG_UNSUPPORTED);
    result.unsupported++;
    deps.log("warn", `${deps.repository}@${call.digest}: tags ${(call.untag_tags ?? []).join(", ")} not removed: ${UNTAG_UNSUPPORTED}`);
  }
  const phases: PendingCall[][] = [[], [], [], []];
  for (const call of calls) if (call.action === "delete") phases[phaseOf(call)]!.push(call);

  for (const phase of phases) {
    if (phase.length === 0) continue;
    const limit = pLimit(Math.max(1, deps.concurrency));
    let stop: unknown;
    const settled = await Promise.allSettled(phase.map((call) => limit(async () => {
      if (stop !== undefined) return;
      try {
        await deps.checkpoint();
      } catch (err) {
        // queued calls see `stop` and return without a call (clearQueue would leave their
        // promises pending forever)
        stop ??= err;
        return;
      }
      let outcome: DeleteOutcome;
      try {
        outcome = await deps.registry.deleteManifest(deps.repository, call.digest, { beforeSend: () => throwIfAborted(deps.stopSignal) });
      } catch (err) {
        if (err instanceof StopRequested) {
          stop ??= err; // not sent: the decision stays pending
          return;
        }
        const message = err instanceof Error ? err.message : String(err);
        await recordOutcome(deps.pool, call.id, "failed", message);
        result.failed++;
        deps.log("error", `delete ${deps.repository}@${call.digest} failed: ${message}`);
        return;
      }
      await recordOutcome(deps.pool, call.id, outcome, null);
      if (outcome === "deleted") result.deleted++;
      else result.alreadyDeleted++;
      deps.log("info", `${outcome === "deleted" ? "deleted" : "already deleted"} ${deps.repository}@${call.digest}`);
    })));
    if (stop !== undefined) {
      deps.log("warn", `stopped during deletion of ${deps.repository}: ${(stop as Error).message ?? String(stop)}`);
      throw stop;
    }
    // a database failure while recording: transient, the task is retried and resumes from
    // the rows still pending (a manifest already gone then answers 404 = already_deleted)
    const failure = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failure) throw failure.reason;
  }
  return result;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  const reason: unknown = signal.reason;
  throw reason instanceof StopRequested ? reason : new StopRequested("worker shutting down");
}
