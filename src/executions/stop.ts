import type pg from "pg";
import { withListenClient } from "../db/listen_client.js";
import type { AppContext } from "../service/context.js";
import { finalizeIfDone } from "./finalize.js";

export type StopResult = "requested" | "already_ended" | "not_found";

/**
 * Ask an execution to stop: the same as `UPDATE ebb.executions SET stop_requested = true`.
 * Tasks not started yet are stopped at once (trigger executions_after_stop); running ones
 * stop at their next checkpoint; the execution ends as 'stopped' when its last task ends.
 */
export async function requestStop(ctx: AppContext, executionId: number): Promise<StopResult> {
  const { rows } = await ctx.pool.query<{ status: string }>(
    `update ebb.executions set stop_requested = true
      where id = $1 and status in ('pending', 'running')
      returning status`,
    [executionId],
  );
  if (rows.length === 0) {
    const { rowCount } = await ctx.pool.query("select 1 from ebb.executions where id = $1", [executionId]);
    return rowCount ? "already_ended" : "not_found";
  }
  await finalizeIfDone(ctx.pool, executionId);
  return "requested";
}

/** The channel ebb.executions_notify_stop notifies, payload the execution id. */
export const STOP_CHANNEL = "ebb:stop";

/**
 * What one process hears of stop requests: the "ebb:stop" notifications received on the
 * worker's LISTEN connection (withStopListen), handed to the running tasks of that execution
 * as they arrive. `listeningSince` is when the current LISTEN was confirmed (null while there
 * is none: no connection yet, a connection lost, or transaction pooling): every stop
 * committed after that moment is heard here, so a task whose last look at the database began
 * after it knows every stop without asking again (TaskControlImpl).
 */
export class StopSignals {
  listeningSince: number | null = null;
  private readonly tasks = new Map<number, Set<() => void>>();
  /** the last stops heard, execution id -> Date.now() (for status and tests; bounded) */
  private readonly recent = new Map<number, number>();

  /** Calls onStop when a stop of the execution is heard; returns the unsubscribe function. */
  subscribe(executionId: number, onStop: () => void): () => void {
    let set = this.tasks.get(executionId);
    if (!set) this.tasks.set(executionId, (set = new Set()));
    set.add(onStop);
    return () => {
      set.delete(onStop);
      if (set.size === 0 && this.tasks.get(executionId) === set) this.tasks.delete(executionId);
    };
  }

  /** When this process heard the execution's stop, if it did lately. */
  heardAt(executionId: number): number | undefined {
    return this.recent.get(executionId);
  }

  heard(payload: string | undefined): void {
    const id = Number(payload);
    if (!Number.isSafeInteger(id)) return;
    if (this.recent.size >= 1000) this.recent.delete(this.recent.keys().next().value!);
    this.recent.set(id, Date.now());
    for (const onStop of [...(this.tasks.get(id) ?? [])]) onStop();
  }
}

const signalsByPool = new WeakMap<object, StopSignals>();

/** The StopSignals of the process that owns `pool` (one per pool: tests run several services in one process). */
export function stopSignalsOf(pool: object): StopSignals {
  let s = signalsByPool.get(pool);
  if (!s) signalsByPool.set(pool, (s = new StopSignals()));
  return s;
}

/**
 * The pool, except that a client taken with the callback form of connect - graphile-worker's
 * one LISTEN client per worker lane pool (src/worker/listenless_pool.ts) - also listens on
 * "ebb:stop" before it is handed over: the stop signal shares that connection instead of
 * holding a pool slot of its own. Notifications on it go to stopSignalsOf(pool); a lost or
 * released connection sets listeningSince back to null until the next LISTEN is confirmed.
 */
export function withStopListen(pool: pg.Pool): pg.Pool {
  const signals = stopSignalsOf(pool);
  let generation = 0;
  return withListenClient(pool, (callback) => {
    pool.connect((err: Error | undefined, client?: pg.PoolClient, release?: (err?: unknown) => void) => {
      if (err || !client || !release) return callback(err, client, release);
      const mine = ++generation;
      const down = () => {
        if (generation === mine) signals.listeningSince = null;
      };
      const onNotification = (msg: pg.Notification) => {
        if (msg.channel === STOP_CHANNEL) signals.heard(msg.payload);
      };
      client.on("notification", onNotification);
      client.on("error", down);
      signals.listeningSince = null;
      // handed over once the LISTEN is confirmed (one query at a time on a client)
      client.query(`LISTEN "${STOP_CHANNEL}"`).then(() => {
        if (generation === mine) signals.listeningSince = Date.now();
        callback(undefined, client, (e?: unknown) => {
          down();
          client.off("notification", onNotification);
          client.off("error", down);
          client.query(`UNLISTEN "${STOP_CHANNEL}"`).catch(() => {}).finally(() => release(e));
        });
      }, (listenErr: Error) => {
        down();
        client.off("notification", onNotification);
        client.off("error", down);
        release(listenErr);
        callback(listenErr); // graphile-worker tries again with backoff
      });
    });
  });
}
