import { EventEmitter } from "node:events";
import type pg from "pg";
import { JOBS_INSERT_CHANNEL, type JobsInsertPayload } from "../executions/job_notifier.js";
import { withStopListen } from "../executions/stop.js";
import { withListenClient } from "../db/listen_client.js";

/**
 * The pool graphile-worker gets when DATABASE_URL is PgBouncer in transaction mode.
 *
 * graphile-worker 0.17 takes a client for `LISTEN "jobs:insert"` from the same pgPool as
 * its jobs, with the callback form `pgPool.connect(cb)` (dist/main.js, runTaskListInternal);
 * every other use is `await pgPool.connect()`. Through PgBouncer in transaction mode that
 * LISTEN lands on whichever server connection serves the statement, which then goes back to
 * PgBouncer's pool: the worker never hears a notification, and PgBouncer logs "got packet 'A'
 * from server when not linked" for every job added while that server connection idles.
 *
 * So the callback-form connect gets a stand-in client that accepts only LISTEN/UNLISTEN and
 * never notifies: no LISTEN reaches PostgreSQL, the listener holds no pool slot, and workers
 * find jobs by polling (pollInterval). Any other query on the stand-in fails loudly, so a
 * graphile-worker that starts using the callback form for real work is noticed at once
 * (test/scaleout/transaction_pooling.test.ts).
 */
export function withoutListen(pool: pg.Pool): pg.Pool {
  return withListenClient(pool, (callback) => queueMicrotask(() => callback(undefined, listenStandIn(), () => {})));
}


/**
 * Two graphile-worker runners on one pool with ONE LISTEN connection (the worker's two lanes,
 * runner.ts): `listening` is the pool as it is, whose LISTEN client (which also listens for
 * stop requests, withStopListen) has its notifications also
 * relayed to `relayed`, a pool whose LISTEN client is a stand-in (as in withoutListen) that
 * emits them - "jobs:insert" only when it announces grouped tasks (`ebbGrouped`, see
 * job_notifier.ts), as a notification of that many jobs: the one-by-one lane runs nothing else.
 */
export function sharedListen(pool: pg.Pool): { listening: pg.Pool; relayed: pg.Pool } {
  const relay = new EventEmitter();
  // the one LISTEN connection also hears stop requests (src/executions/stop.ts)
  const source = withStopListen(pool);
  const listening = withListenClient(pool, (callback) => {
    source.connect((err: Error | undefined, client?: pg.PoolClient, release?: (err?: unknown) => void) => {
      if (err || !client || !release) return callback(err, client, release);
      const forward = (msg: pg.Notification) => {
        const relayed = forOneByOneLane(msg);
        if (relayed) relay.emit("notification", relayed);
      };
      client.on("notification", forward);
      callback(undefined, client, (e?: unknown) => {
        client.off("notification", forward);
        release(e);
      });
    });
  });
  const relayed = withListenClient(pool, (callback) => {
    const standIn = listenStandIn();
    relay.on("notification", (msg) => standIn.emit("notification", msg));
    queueMicrotask(() => callback(undefined, standIn, () => {}));
  });
  return { listening, relayed };
}

function forOneByOneLane(msg: pg.Notification): pg.Notification | null {
  if (msg.channel !== JOBS_INSERT_CHANNEL) return msg;
  let grouped = 0;
  try {
    grouped = Number((JSON.parse(msg.payload ?? "{}") as JobsInsertPayload).ebbGrouped) || 0;
  } catch {
    return null;
  }
  return grouped > 0 ? { ...msg, payload: JSON.stringify({ count: grouped }) } : null;
}

const LISTEN_ONLY = /^\s*(UN)?LISTEN\s+"[^"]+"\s*(;\s*(UN)?LISTEN\s+"[^"]+"\s*)*;?\s*$/i;

function listenStandIn(): EventEmitter & { query(text: unknown): Promise<{ rows: never[] }>; release(): void } {
  const client = new EventEmitter();
  return Object.assign(client, {
    query(text: unknown) {
      if (typeof text === "string" && LISTEN_ONLY.test(text)) return Promise.resolve({ rows: [] as never[] });
      return Promise.reject(
        new Error(`ebb: graphile-worker sent ${JSON.stringify(String(text).slice(0, 80))} on its stand-in LISTEN client; only LISTEN/UNLISTEN were expected`),
      );
    },
    release() {},
  });
}
