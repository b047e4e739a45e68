import assert from "node:assert/strict";
import { test } from "node:test";
import { createPool } from "../../src/db/pool.js";
import { freshDatabase } from "../support/db.js";
import { startTcpProxy } from "../support/tcp_proxy.js";
import { waitFor as sharedWaitFor } from "../support/wait_for.js";
import {
  artifacts, digestOf, envelope, pullEvent, pushEvent, recordingPool, seedRegistry, startEventsServer, tags,
} from "./support/events_server.js";

const T0 = Date.parse("2025-03-01T10:00:00Z");
const at = (seconds: number) => new Date(T0 + seconds * 1000);

/** Poll `check` every 20 ms until it holds. */
const waitFor = (what: string, check: () => Promise<boolean> | boolean, ms = 60_000) => sharedWaitFor(what, check, ms, 20);

test("1,000 pulls of 3 digests coalesce into one flush statement with the latest times", async (t) => {
  const db = await freshDatabase(t);
  await seedRegistry(db.pool);
  const rec = recordingPool(db.pool);
  const server = await startEventsServer(t, db.pool, db.url, { eventsFlushBatch: 10_000 }, { ingestPool: rec.pool });
  const digests = [digestOf("a"), digestOf("b"), digestOf("c")];
  for (const [i, d] of digests.entries()) {
    const res = await server.post(envelope(pushEvent({ repo: "team/app", digest: d, tag: `t${i}`, at: at(0) })));
    assert.equal(res.status, 200);
  }

  // 1,000 pulls in 100 envelopes sent 20 at a time, times shuffled; half by tag.
  const pulls = Array.from({ length: 1000 }, (_, i) => ({ d: i % 3, byTag: i % 2 === 0, sec: 100 + ((i * 7919) % 1000) }));
  const maxBy = (f: (p: (typeof pulls)[number]) => boolean) => Math.max(...pulls.filter(f).map((p) => p.sec));
  const bodies = Array.from({ length: 100 }, (_, e) =>
    envelope(...pulls.slice(e * 10, e * 10 + 10).map((p) =>
      pullEvent({ repo: "team/app", digest: digests[p.d]!, tag: p.byTag ? `t${p.d}` : undefined, at: at(p.sec) }))));
  for (let i = 0; i < bodies.length; i += 20) {
    const answers = await Promise.all(bodies.slice(i, i + 20).map((b) => server.post(b)));
    for (const a of answers) assert.equal(a.status, 200);
  }
  assert.equal(server.ingest.bufferedPulls(), 6, "3 digests x (by tag, by digest)");
  const before = rec.statements.length;
  assert.equal(await server.ingest.flush(), true);
  const flushStatements = rec.statements.slice(before);
  assert.equal(flushStatements.length, 1, "one statement for the whole flush");
  assert.match(flushStatements[0]!, /unnest/);
  assert.equal(server.ingest.counters.flushes, 1);
  assert.equal(server.ingest.counters.lastFlushSize, 6);

  const rows = await artifacts(db.pool);
  const tagRows = await tags(db.pool);
  for (const [i, d] of digests.entries()) {
    assert.equal(rows.find((r) => r.digest === d)!.pulled_at?.toISOString(), at(maxBy((p) => p.d === i)).toISOString(), `artifact ${i}`);
    assert.equal(tagRows.find((r) => r.name === `t${i}`)!.pulled_at?.toISOString(), at(maxBy((p) => p.d === i && p.byTag)).toISOString(), `tag t${i}`);
  }
  assert.equal(server.ingest.counters.eventsAccepted.pull, 1000);
});

test("the buffer flushes by itself: on the interval, and early when it reaches eventsFlushBatch", async (t) => {
  const db = await freshDatabase(t);
  await seedRegistry(db.pool);
  const A = digestOf("a"), B = digestOf("b");
  const timed = await startEventsServer(t, db.pool, db.url, { eventsFlushIntervalMs: 50 });
  await timed.post(envelope(pushEvent({ repo: "team/app", digest: A, at: at(0) }), pushEvent({ repo: "team/app", digest: B, at: at(0) })));
  await timed.post(envelope(pullEvent({ repo: "team/app", digest: A, at: at(1) })));
  await waitFor("interval flush", async () => (await artifacts(db.pool)).find((r) => r.digest === A)!.pulled_at !== null);
  await timed.stop();

  const sized = await startEventsServer(t, db.pool, db.url, { eventsFlushIntervalMs: 60_000, eventsFlushBatch: 2 });
  await sized.post(envelope(pullEvent({ repo: "team/app", digest: B, at: at(2) })));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal((await artifacts(db.pool)).find((r) => r.digest === B)!.pulled_at, null, "1 entry < batch of 2: waits");
  await sized.post(envelope(pullEvent({ repo: "team/app", digest: A, at: at(3) })));
  await waitFor("size flush", async () => (await artifacts(db.pool)).find((r) => r.digest === B)!.pulled_at !== null);
});

test("stop() drains the buffer: acknowledged pulls are written at shutdown", async (t) => {
  const db = await freshDatabase(t);
  await seedRegistry(db.pool);
  const server = await startEventsServer(t, db.pool, db.url, { eventsFlushIntervalMs: 60_000 });
  const A = digestOf("a");
  await server.post(envelope(pushEvent({ repo: "team/app", digest: A, tag: "v1", at: at(0) })));
  assert.equal((await server.post(envelope(pullEvent({ repo: "team/app", digest: A, tag: "v1", at: at(9) })))).status, 200);
  assert.equal((await artifacts(db.pool))[0]!.pulled_at, null);
  await server.stop();
  assert.equal((await artifacts(db.pool))[0]!.pulled_at?.toISOString(), at(9).toISOString());
  assert.equal((await tags(db.pool))[0]!.pulled_at?.toISOString(), at(9).toISOString());
  assert.equal((await server.ingest.receive("local", envelope(pullEvent({ repo: "team/app", digest: A, at: at(10) })))).status, 503, "refused once stopping");
});

test("full buffer: new pulls get 503 + Retry-After, known ones still coalesce; a failed flush keeps its entries; nothing acknowledged is lost", async (t) => {
  const db = await freshDatabase(t);
  await seedRegistry(db.pool);
  const target = new URL(db.url);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  t.after(() => proxy.close());
  const viaProxy = new URL(db.url);
  viaProxy.port = String(proxy.port);
  const ingestPool = createPool({ connectionString: viaProxy.toString(), max: 2, role: "ingest-test" });
  t.after(() => ingestPool.end());
  const server = await startEventsServer(t, db.pool, db.url, { eventsBufferMax: 5, eventsFlushBatch: 5, eventsFlushIntervalMs: 60_000 }, { ingestPool });
  const d = Array.from({ length: 7 }, (_, i) => digestOf(`d${i}`));
  assert.equal((await server.post(envelope(...d.map((x) => pushEvent({ repo: "team/app", digest: x, at: at(0) }))))).status, 200);

  proxy.cut(); // the database goes away for the ingest
  for (let i = 0; i < 4; i++) assert.equal((await server.post(envelope(pullEvent({ repo: "team/app", digest: d[i]!, at: at(10 + i) })))).status, 200);
  assert.equal(await server.ingest.flush(), false, "flush fails while the database is away");
  assert.equal(server.ingest.bufferedPulls(), 4, "entries of the failed flush are kept");
  const failures = server.ingest.counters.flushFailures;
  assert.equal((await server.post(envelope(pullEvent({ repo: "team/app", digest: d[4]!, at: at(14) })))).status, 200, "5th key fits");
  await waitFor("the size-triggered flush to fail too", () => server.ingest.counters.flushFailures > failures);
  const full = await server.post(envelope(pullEvent({ repo: "team/app", digest: d[5]!, at: at(15) })));
  assert.equal(full.status, 503);
  assert.equal(full.headers.get("retry-after"), "1");
  assert.match((await full.json()).error, /pull buffer full \(5 entries\)/);
  // an envelope mixing a known key and a new key is refused as a whole
  assert.equal((await server.post(envelope(pullEvent({ repo: "team/app", digest: d[0]!, at: at(30) }), pullEvent({ repo: "team/app", digest: d[6]!, at: at(30) })))).status, 503);
  const known = await server.post(envelope(pullEvent({ repo: "team/app", digest: d[0]!, at: at(20) })));
  assert.equal(known.status, 200, "a pull of a held key coalesces even when full");
  assert.equal(server.ingest.bufferedPulls(), 5);
  assert.ok(server.ingest.counters.envelopesRefused.backpressure >= 2);
  assert.ok(server.ingest.counters.flushFailures >= 1);

  proxy.restore(); // the registry retries the refused envelope: now it fits after a flush
  assert.equal(await server.ingest.flush(), true);
  assert.equal((await server.post(envelope(pullEvent({ repo: "team/app", digest: d[5]!, at: at(15) })))).status, 200);
  await server.stop();

  const pulled = new Map((await artifacts(db.pool)).map((r) => [r.digest, r.pulled_at?.toISOString() ?? null]));
  assert.equal(pulled.get(d[0]!), at(20).toISOString(), "coalesced max of the acknowledged pulls (the refused one at 30 is not counted)");
  for (let i = 1; i < 6; i++) assert.equal(pulled.get(d[i]!), at(10 + i).toISOString(), `d${i}`);
  assert.equal(pulled.get(d[6]!), null, "refused, never acknowledged");
});
