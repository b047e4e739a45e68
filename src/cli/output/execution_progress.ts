// Following an execution to its end (`ebb run --wait`, `ebb sync --wait`, `ebb stop --wait`):
// poll its row, draw a progress bar on a TTY (tasks done / total, deletions so far) or print a
// line when something changes otherwise, and give up with a clear message when no ebb worker
// is alive to run it. Waiting never changes the execution: an interrupted wait leaves it
// running.
import cliProgress from "cli-progress";
import type pg from "pg";
import type { ExecutionStatusName } from "../../executions/execution_queries.js";

export interface ProgressSnapshot {
  status: ExecutionStatusName;
  kind: string;
  planned: boolean;
  stop_requested: boolean;
  tasks: number;
  open_tasks: number;
  /** registry deletions done (delete/untag decisions deleted or already gone) */
  deleted: number;
  /** dry run: what would have been deleted */
  would_delete: number;
  live_workers: number;
}

export type FollowResult =
  | { end: "ended"; status: ExecutionStatusName; snapshot: ProgressSnapshot }
  | { end: "no_worker"; status: ExecutionStatusName; waitedMs: number }
  | { end: "interrupted"; status: ExecutionStatusName }
  | { end: "not_found" };

export interface FollowOptions {
  /** poll period (default 1000 ms) */
  pollMs?: number;
  /** a worker heartbeat older than this is not alive (the service's dead-worker timeout) */
  workerAliveMs: number;
  /** give up after the execution stayed open this long with no live worker */
  noWorkerAfterMs: number;
  /** where progress goes (stderr: stdout keeps the id and the summary) */
  out?: NodeJS.WriteStream;
  /** progress bar (default: when `out` is a TTY); otherwise a line per change */
  bar?: boolean;
  signal?: AbortSignal;
}

const OPEN = new Set<ExecutionStatusName>(["pending", "running"]);

/**
 * One poll. Counts read: tasks (execution_id, key) unique index; decisions_execution_action_idx
 * (execution_id, action, outcome), an index-only count of the delete/untag rows; heartbeats
 * (a row per worker pool).
 */
export async function readProgress(db: Pick<pg.Pool, "query">, executionId: number, workerAliveMs: number): Promise<ProgressSnapshot | undefined> {
  const { rows } = await db.query<ProgressSnapshot>(
    `select e.status, e.kind, e.planned, e.stop_requested,
            (select count(*) from ebb.tasks t where t.execution_id = e.id)::int as tasks,
            (select count(*) from ebb.tasks t where t.execution_id = e.id and t.status in ('pending', 'running'))::int as open_tasks,
            (select count(*) from ebb.decisions d where d.execution_id = e.id and d.action in ('delete', 'untag')
                and d.outcome in ('deleted', 'already_deleted'))::int8 as deleted,
            (select count(*) from ebb.decisions d where d.execution_id = e.id and d.action in ('delete', 'untag')
                and d.outcome = 'dry_run')::int8 as would_delete,
            (select count(*) from ebb.worker_heartbeats h
              where h.last_seen_at > now() - make_interval(secs => $2::float8 / 1000))::int as live_workers
       from ebb.executions e where e.id = $1`,
    [executionId, workerAliveMs],
  );
  return rows[0];
}

function unit(kind: string): string {
  return kind === "retention" ? "repositories" : "tasks";
}

function deletionsText(s: ProgressSnapshot): string {
  if (s.kind !== "retention") return "";
  return s.would_delete > 0 && s.deleted === 0 ? `${s.would_delete} would be deleted (dry run)` : `${s.deleted} deleted`;
}

export function progressLine(id: number, s: ProgressSnapshot): string {
  const done = s.tasks - s.open_tasks;
  const parts = [`execution ${id}: ${s.status}${s.stop_requested && OPEN.has(s.status) ? " (stopping)" : ""}`,
    `${done}/${s.tasks}${s.planned ? "" : "+"} ${unit(s.kind)}`];
  const del = deletionsText(s);
  if (del) parts.push(del);
  return parts.join(", ");
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

export async function followExecution(db: Pick<pg.Pool, "query">, executionId: number, opts: FollowOptions): Promise<FollowResult> {
  const out = opts.out ?? process.stderr;
  const pollMs = opts.pollMs ?? 1000;
  const useBar = opts.bar ?? Boolean(out.isTTY);
  let bar: cliProgress.SingleBar | undefined;
  let lastLine = "";
  let lastLineAt = 0;
  let noWorkerSince: number | undefined;
  let last: ProgressSnapshot | undefined;
  const show = (s: ProgressSnapshot, final: boolean) => {
    const done = s.tasks - s.open_tasks;
    if (useBar) {
      const payload = { status: s.status, unit: unit(s.kind), deletions: deletionsText(s) ? ` | ${deletionsText(s)}` : "" };
      if (!bar) {
        bar = new cliProgress.SingleBar({
          stream: out,
          format: `execution ${executionId} [{bar}] {value}/{total} {unit}{deletions} | {status}`,
          hideCursor: true,
          clearOnComplete: false,
          noTTYOutput: false,
        }, cliProgress.Presets.shades_classic);
        bar.start(Math.max(s.tasks, 1), done, payload);
      }
      bar.setTotal(Math.max(s.tasks, 1));
      bar.update(done, payload);
      if (final) bar.stop();
      return;
    }
    const line = progressLine(executionId, s);
    // a line when something changed, at most every 2 s (and always the last one)
    if (line !== lastLine && (final || Date.now() - lastLineAt >= 2000)) {
      out.write(`${line}\n`);
      lastLine = line;
      lastLineAt = Date.now();
    }
  };
  try {
    for (;;) {
      const s = await readProgress(db, executionId, opts.workerAliveMs);
      if (!s) return { end: "not_found" };
      last = s;
      if (!OPEN.has(s.status)) {
        show(s, true);
        return { end: "ended", status: s.status, snapshot: s };
      }
      show(s, false);
      if (s.live_workers === 0) {
        noWorkerSince ??= Date.now();
        const waited = Date.now() - noWorkerSince;
        if (waited >= opts.noWorkerAfterMs) {
          bar?.stop();
          return { end: "no_worker", status: s.status, waitedMs: waited };
        }
      } else {
        noWorkerSince = undefined;
      }
      if (opts.signal?.aborted) {
        bar?.stop();
        return { end: "interrupted", status: s.status };
      }
      await sleep(pollMs, opts.signal);
      if (opts.signal?.aborted) {
        bar?.stop();
        return { end: "interrupted", status: last.status };
      }
    }
  } catch (err) {
    bar?.stop();
    throw err;
  }
}
