import assert from "node:assert/strict";
import { test } from "node:test";
import { loadConfig } from "../../src/config/load.js";
import { createLogger } from "../../src/log/logger.js";
import { startService } from "../../src/service/service.js";
import { freshDatabase } from "../support/db.js";
import { digestOf, envelope, pullEvent, pushEvent, seedRegistry } from "./support/events_server.js";

test("ebb start serves POST /events, exports ingest metrics, and flushes buffered pulls on shutdown", async () => {
  const db = await freshDatabase();
  await seedRegistry(db.pool);
  const config = loadConfig({}, {
    databaseUrl: db.url, httpPort: 0, roles: "http", eventsToken: "s3cret-token",
    eventsFlushIntervalMs: 60_000, // only the shutdown flush can write the pulls
  });
  const service = await startService(config, createLogger("silent"));
  const url = `${service.http!.url}/events?registry=local`;
  const post = (body: object, token = "s3cret-token") =>
    fetch(url, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  const A = digestOf("A");
  const pushedAt = new Date("2026-01-01T00:00:00Z");
  const pulledAt = new Date("2026-01-02T00:00:00Z");
  let stopped = false;
  try {
    assert.equal((await post(envelope(pushEvent({ repo: "team/app", digest: A, tag: "v1", at: pushedAt })), "wrong")).status, 401);
    assert.equal((await post(envelope(pushEvent({ repo: "team/app", digest: A, tag: "v1", at: pushedAt })))).status, 200);
    for (let i = 0; i < 5; i++) {
      assert.equal((await post(envelope(pullEvent({ repo: "team/app", digest: A, tag: "v1", at: pulledAt })))).status, 200);
    }
    const before = await db.pool.query("select pulled_at from ebb.artifacts where digest = $1", [A]);
    assert.equal(before.rows[0].pulled_at, null, "pulls wait in the buffer (flush interval is long)");

    const metrics = await (await fetch(`${service.http!.url}/metrics`)).text();
    assert.match(metrics, /^ebb_ingest_events_total\{action="pull",result="accepted"\} 5$/m);
    assert.match(metrics, /^ebb_ingest_envelopes_total\{outcome="unauthorized"\} 1$/m);
    assert.match(metrics, /^ebb_ingest_buffered_pulls 1$/m);

    assert.equal(await service.stop("test"), 0);
    stopped = true;
    const after = await db.pool.query("select a.pulled_at, t.pulled_at as tag_pulled_at from ebb.artifacts a join ebb.tags t using (repository_id, digest) where a.digest = $1", [A]);
    assert.equal(after.rows[0].pulled_at.toISOString(), pulledAt.toISOString(), "the shutdown flush wrote the acknowledged pulls");
    assert.equal(after.rows[0].tag_pulled_at.toISOString(), pulledAt.toISOString());
  } finally {
    if (!stopped) await service.stop("test failed");
  }
});
