import type pg from "pg";
import type { NamedStatement } from "./bookkeeping_statement.js";

/**
 * Requests for the same statement made in the same turn of the event loop, sent as ONE
 * statement: the worker's jobs run side by side (localQueue hands several of them out at
 * once), so their task claims and task ends arrive together - one round trip and one commit
 * for all instead of one each. Like graphile-worker's batched job completion.
 *
 * `runBatch` answers every request of a batch (a Map by request key). When it fails, each
 * request is sent on its own with `runOne`, so one bad request never fails the others, and each
 * caller gets its own outcome. A key already waiting in the batch (the same task twice) is sent
 * on its own after the batch: a batch never holds a key twice.
 */
export class CoalescedStatement<K, In, Out> {
  private batch: Map<K, { input: In; resolve: (out: Out) => void; reject: (err: unknown) => void }> | undefined;

  constructor(
    private readonly runBatch: (inputs: Map<K, In>) => Promise<Map<K, Out>>,
    private readonly runOne: (input: In) => Promise<Out>,
    private readonly keyOf: (input: In) => K,
  ) {}

  run(input: In): Promise<Out> {
    const key = this.keyOf(input);
    if (this.batch?.has(key)) {
      const waiting = this.batch.get(key)!;
      const after = new Promise<void>((resolve) => {
        const { resolve: res, reject: rej } = waiting;
        waiting.resolve = (out) => { res(out); resolve(); };
        waiting.reject = (err) => { rej(err); resolve(); };
      });
      return after.then(() => this.runOne(input));
    }
    if (!this.batch) {
      this.batch = new Map();
      setImmediate(() => void this.flush());
    }
    return new Promise<Out>((resolve, reject) => this.batch!.set(key, { input, resolve, reject }));
  }

  private async flush(): Promise<void> {
    const batch = this.batch!;
    this.batch = undefined;
    if (batch.size === 1) {
      const [only] = batch.values();
      return this.runOne(only!.input).then(only!.resolve, only!.reject);
    }
    let answers: Map<K, Out>;
    try {
      answers = await this.runBatch(new Map([...batch].map(([k, r]) => [k, r.input])));
    } catch {
      for (const r of batch.values()) this.runOne(r.input).then(r.resolve, r.reject);
      return;
    }
    for (const [k, r] of batch) {
      if (answers.has(k)) r.resolve(answers.get(k)!);
      else r.reject(new Error(`coalesced statement: no answer for ${String(k)}`));
    }
  }
}

/**
 * A coalesced statement over row ids: `sql` takes the ids as `$1::bigint[]` (then `moreParams`) and returns a row
 * (with `id`) for each one it applies to; a request whose id has no row gets null.
 */
export function coalescedById<Row extends { id: number }>(
  pool: Pick<pg.Pool, "query">, sql: NamedStatement, moreParams: unknown[] = [],
): CoalescedStatement<number, number, Row | null> {
  return new CoalescedStatement<number, number, Row | null>(
    async (ids) => {
      const { rows } = await pool.query<Row>(sql, [[...ids.keys()], ...moreParams]);
      const byId = new Map<number, Row | null>([...ids.keys()].map((id) => [id, null]));
      for (const r of rows) byId.set(Number(r.id), r);
      return byId;
    },
    async (id) => (await pool.query<Row>(sql, [[id], ...moreParams])).rows[0] ?? null,
    (id) => id,
  );
}
