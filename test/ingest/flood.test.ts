import assert from "node:assert/strict";
import { test } from "node:test";
import { Pool } from "undici";
import { createPool } from "../../src/db/pool.js";
import { freshDatabase } from "../support/db.js";
import { AUTH, EVENTS_TYPE, envelope, pullEvent, seedRegistry, startEventsServer } from "./support/events_server.js";

const EVENTS = 100_000;
const ARTIFACTS = 20_000;
const PER_ENVELOPE = 10;
const CONCURRENCY = 64;
const BUFFER_MAX = 2_000;
const T0 = Date.parse("2025-03-01T00:00:00Z");

test("a flood of 100,000 pull events: bounded buffer, one ingest connection at most, nothing acknowledged lost", async (t) => {
  const db = await freshDatabase(t);
  const registryId = await seedRegistry(db.pool);
  // Seeding contract of migrations/0001_schema.sql: 20,000 artifacts, each tagged t<i>.
  const repo = await db.pool.query<{ id: number }>("insert into ebb.repositories (registry_id, name) values ($1, 'team/app') returning id", [registryId]);
  const repoId = repo.rows[0]!.id;
  await db.pool.query(
    `insert into ebb.artifacts (repository_id, digest, media_type, size, pushed_at, pushed_at_source)
     select $1, 'sha256:' || encode(sha256(i::text::bytea), 'hex'), 'application/vnd.oci.image.manifest.v1+json', 400, now(), 'seed'
       from generate_series(0, $2 - 1) i`,
    [repoId, ARTIFACTS],
  );
  await db.pool.query(
    `insert into ebb.tags (repository_id, name, digest) select $1, 't' || i, 'sha256:' || encode(sha256(i::text::bytea), 'hex') from generate_series(0, $2 - 1) i`,
    [repoId, ARTIFACTS],
  );
  const digests = (await db.pool.query<{ i: number; d: string }>(
    "select i, 'sha256:' || encode(sha256(i::text::bytea), 'hex') as d from generate_series(0, $1 - 1) i order by i", [ARTIFACTS],
  )).rows.map((r) => r.d);

  // The ingest gets its own pool (max 10) so its connections can be counted by application_name.
  const ingestPool = createPool({ connectionString: db.url, max: 10, role: "ingest-flood" });
  t.after(() => ingestPool.end());
  const server = await startEventsServer(
    t, db.pool, db.url, { eventsBufferMax: BUFFER_MAX, eventsFlushBatch: 1_000, eventsFlushIntervalMs: 100 }, { ingestPool },
  );

  // Event i pulls artifact i % ARTIFACTS at T0 + i ms; every 4th by tag. Bodies are built
  // as they are sent (the test's own memory stays small).
  const expectedArtifact = new Map<string, number>();
  const expectedTag = new Map<string, number>();
  for (let i = 0; i < EVENTS; i++) {
    const n = i % ARTIFACTS;
    expectedArtifact.set(digests[n]!, T0 + i);
    if (i % 4 === 0) expectedTag.set(`t${n}`, T0 + i);
  }
  const body = (envelopeNo: number): string => {
    const events = [];
    for (let i = envelopeNo * PER_ENVELOPE; i < (envelopeNo + 1) * PER_ENVELOPE; i++) {
      const n = i % ARTIFACTS;
      events.push(pullEvent({ repo: "team/app", digest: digests[n]!, tag: i % 4 === 0 ? `t${n}` : undefined, at: new Date(T0 + i) }));
    }
    return JSON.stringify(envelope(...events));
  };
  const envelopes = EVENTS / PER_ENVELOPE;
  const client = new Pool(server.url, { connections: CONCURRENCY });
  t.after(() => client.close());

  // Samplers: connections of the ingest pool (pg_stat_activity), buffer size, heap.
  let maxConnections = 0, maxBuffered = 0, maxHeap = 0;
  const heapBefore = process.memoryUsage().heapUsed;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const r = await db.pool.query<{ n: number }>(
        "select count(*)::int as n from pg_stat_activity where datname = $1 and application_name = 'ebb:ingest-flood'", [db.name],
      );
      maxConnections = Math.max(maxConnections, r.rows[0]!.n);
      maxBuffered = Math.max(maxBuffered, server.ingest.bufferedPulls());
      maxHeap = Math.max(maxHeap, process.memoryUsage().heapUsed);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();

  // The burst: CONCURRENCY senders; a 503 is retried after a pause, like the registry does.
  let next = 0, refused = 0;
  const started = Date.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < envelopes) {
      const payload = body(next++);
      for (;;) {
        const res = await client.request({
          path: "/events?registry=local", method: "POST", headers: { "content-type": EVENTS_TYPE, ...AUTH }, body: payload,
        });
        await res.body.arrayBuffer();
        if (res.statusCode === 200) break;
        assert.equal(res.statusCode, 503, `unexpected ${res.statusCode}`);
        refused++;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }));
  const sentMs = Date.now() - started;
  await server.stop(); // final flush
  sampling = false;
  await sampler;

  const c = server.ingest.counters;
  t.diagnostic(`${EVENTS} events in ${sentMs} ms; ${refused} envelopes refused (503) and retried; ${c.flushes} flushes, largest ${c.maxFlushSize}; max ingest connections ${maxConnections}; max buffered ${maxBuffered}; heap +${Math.round((maxHeap - heapBefore) / 1e6)} MB`);
  assert.equal(c.eventsAccepted.pull, EVENTS);
  assert.ok(maxConnections <= 1, `ingest used ${maxConnections} connections at once`);
  assert.ok(maxConnections === 1, "the sampler saw the ingest connection (it does sample)");
  assert.ok(maxBuffered <= BUFFER_MAX, `buffer held ${maxBuffered} > ${BUFFER_MAX}`);
  assert.ok(c.maxFlushSize <= BUFFER_MAX);
  assert.ok(maxHeap - heapBefore < 200e6, `heap grew by ${Math.round((maxHeap - heapBefore) / 1e6)} MB`);

  const rows = await db.pool.query<{ digest: string; pulled_at: Date | null }>("select digest, pulled_at from ebb.artifacts");
  let wrong = 0;
  for (const r of rows.rows) if (r.pulled_at?.getTime() !== expectedArtifact.get(r.digest)) wrong++;
  assert.equal(wrong, 0, "every artifact's pulled_at is its latest acknowledged pull");
  const tagRows = await db.pool.query<{ name: string; pulled_at: Date | null }>("select name, pulled_at from ebb.tags");
  let wrongTags = 0;
  for (const r of tagRows.rows) if ((r.pulled_at?.getTime() ?? undefined) !== expectedTag.get(r.name)) wrongTags++;
  assert.equal(wrongTags, 0, "every tag's pulled_at is its latest acknowledged pull by tag (untouched when never pulled by tag)");
});
