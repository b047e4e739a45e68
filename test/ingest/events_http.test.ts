import assert from "node:assert/strict";
import { test } from "node:test";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { bearerTokenMatches } from "../../src/http/events_route.js";
import { freshDatabase } from "../support/db.js";
import {
  AUTH, EVENTS_TYPE, TOKEN, artifacts, digestOf, envelope, pushEvent, seedRegistry, startEventsServer,
} from "./support/events_server.js";

const good = () => envelope(pushEvent({ repo: "team/app", digest: digestOf("a"), tag: "v1", at: new Date() }));

test("POST /events refuses bad callers and bad bodies with the right status and a reason, and writes nothing", async (t) => {
  const db = await freshDatabase(t);
  await seedRegistry(db.pool);
  const server = await startEventsServer(t, db.pool, db.url, { eventsBodyLimitBytes: 4096 });

  await t.test("401 without a token, with a wrong token, with another scheme", async () => {
    for (const headers of [{ authorization: "" }, { authorization: `Bearer ${TOKEN}x` }, { authorization: `Basic ${TOKEN}` }, { authorization: "Bearer" }]) {
      const res = await server.post(good(), { headers });
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="ebb-events"');
      assert.match((await res.json()).error, /^authorization: /);
    }
    const noHeader = await fetch(`${server.url}/events?registry=local`, { method: "POST", headers: { "content-type": EVENTS_TYPE }, body: JSON.stringify(good()) });
    assert.equal(noHeader.status, 401);
  });

  await t.test("401 comes before reading an oversized body", async () => {
    const res = await server.post("x".repeat(10_000), { headers: { authorization: "Bearer nope" } });
    assert.equal(res.status, 401);
  });

  await t.test("413 over the body limit", async () => {
    const big = envelope(...Array.from({ length: 40 }, (_, i) => pushEvent({ repo: "team/app", digest: digestOf(`big${i}`), at: new Date() })));
    const res = await server.post(big);
    assert.equal(res.status, 413);
    assert.match((await res.json()).error, /larger than 4096 bytes/);
  });

  await t.test("400 on malformed JSON, naming the body", async () => {
    for (const body of ['{"events": [', "not json", "[1,2"]) {
      const res = await server.post(body);
      assert.equal(res.status, 400, body);
      assert.match((await res.json()).error, /^body: malformed JSON/);
    }
  });

  await t.test("400 on wrong shapes, naming the field", async () => {
    const cases: [unknown, RegExp][] = [
      ["", /^body: must be a JSON object/],
      [[], /^body: must be a JSON object/],
      [{}, /^events: required/],
      [{ events: "nope" }, /^events: must be an array/],
      [{ events: [{ action: "push", target: { repository: "team/app" } }] }, /events\[0\]\.timestamp: required/],
      [{ events: [{ ...pushEvent({ repo: "team/app", digest: digestOf("x"), at: new Date() }), timestamp: "yesterday" }] }, /events\[0\]\.timestamp: must be an RFC 3339 time/],
      [envelope(pushEvent({ repo: "Team/App; drop table ebb.artifacts", digest: digestOf("x"), at: new Date() })), /events\[0\]\.target\.repository: must be a repository name/],
      [envelope(pushEvent({ repo: "../../etc/passwd", digest: digestOf("x"), at: new Date() })), /events\[0\]\.target\.repository: must be a repository name/],
      [envelope(pushEvent({ repo: "team/app", digest: "sha256:'; --", at: new Date() })), /events\[0\]\.target\.digest: must be a digest/],
      [envelope(pushEvent({ repo: "team/app", digest: digestOf("x"), tag: "-bad tag", at: new Date() })), /events\[0\]\.target\.tag: must be a tag name/],
      [envelope(good().events[0]!, { ...pushEvent({ repo: "team/app", digest: digestOf("x"), at: new Date() }), target: { repository: "team/app", url: "http://r/v2/team/app/manifests/x" } }), /events\[1\]\.target\.digest: required for a manifest push/],
      [envelope({ ...pushEvent({ repo: "team/app", digest: digestOf("x"), at: new Date(), size: -1 }) }), /events\[0\]\.target\.size: must be >= 0/],
      [envelope({ timestamp: new Date().toISOString(), action: "delete", target: { repository: "team/app" } }), /events\[0\]\.target: a delete needs a digest or a tag/],
      // PostgreSQL cannot store a NUL in text: refused with the field named, not a database error
      [envelope({ ...pushEvent({ repo: "team/app", digest: digestOf("x"), at: new Date() }), request: { useragent: "docker/\u0000" } }), /events\[0\]\.request\.useragent: must not contain the NUL character/],
      [envelope({ ...pushEvent({ repo: "team/app", digest: digestOf("x"), at: new Date() }), id: "a\u0000b" }), /events\[0\]\.id: must not contain the NUL character/],
    ];
    for (const [body, reason] of cases) {
      const res = await server.post(body === "" ? "" : body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match((await res.json()).error, reason, JSON.stringify(body));
    }
  });

  await t.test("400 without ?registry=, 404 for a registry ebb does not know", async () => {
    const noParam = await fetch(`${server.url}/events`, { method: "POST", headers: { "content-type": EVENTS_TYPE, ...AUTH }, body: JSON.stringify(good()) });
    assert.equal(noParam.status, 400);
    assert.match((await noParam.json()).error, /^registry: query parameter required/);
    const unknown = await server.post(good(), { registry: "elsewhere" });
    assert.equal(unknown.status, 404);
    assert.match((await unknown.json()).error, /^registry: no registry named "elsewhere"/);
  });

  await t.test("nothing was written by any refused request", async () => {
    assert.deepEqual(await artifacts(db.pool), []);
  });

  await t.test("the right token with the registry's content type (or plain JSON) is accepted", async () => {
    const res = await server.post(good());
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { accepted: 1, ignored: 0 });
    const json = await server.post(good(), { headers: { "content-type": "application/json" } });
    assert.equal(json.status, 200);
    assert.equal((await artifacts(db.pool)).length, 1);
  });

  const c = server.ingest.counters;
  assert.ok(c.envelopesRefused.unauthorized >= 6);
  assert.equal(c.envelopesRefused.too_large, 1);
  assert.equal(c.envelopesAccepted, 2);
});

test("an envelope with more events than EBB_EVENTS_MAX_PER_ENVELOPE is refused with 413 before any event is validated", async (t) => {
  const db = await freshDatabase(t);
  await seedRegistry(db.pool);
  const server = await startEventsServer(t, db.pool, db.url, { eventsBodyLimitBytes: 4 * 1024 * 1024, eventsMaxPerEnvelope: 1000 });
  // 100,000 empty events: validating them blocked the event loop for seconds and, 8 at once, took hundreds of MB
  const huge = JSON.stringify({ events: Array.from({ length: 100_000 }, () => ({})) });
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const responses = await Promise.all(Array.from({ length: 8 }, () => server.post(huge)));
  loop.disable();
  for (const res of responses) {
    assert.equal(res.status, 413);
    assert.equal((await res.json()).error, "events: 100000 events in one envelope, more than 1000 (EBB_EVENTS_MAX_PER_ENVELOPE); nothing was recorded");
  }
  t.diagnostic(`longest event-loop stall while refusing 8 envelopes of 100,000 events: ${Math.round(loop.max / 1e6)} ms`);
  assert.ok(loop.max / 1e6 < 1000, `the event loop stalled ${Math.round(loop.max / 1e6)} ms`);
  assert.equal(server.ingest.counters.envelopesRefused.too_large, 8);
  // 1,001 valid events: over the cap all the same; 1,000 are taken
  const events = (n: number) => Array.from({ length: n }, (_, i) => pushEvent({ repo: "team/app", digest: digestOf(`cap${i}`), at: new Date() }));
  assert.equal((await server.post(envelope(...events(1001)))).status, 413);
  assert.deepEqual(await artifacts(db.pool), [], "nothing of a refused envelope was written");
  const ok = await server.post(envelope(...events(1000)));
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { accepted: 1000, ignored: 0 });
});

test("no events token configured: every notification is refused", async (t) => {
  const db = await freshDatabase(t);
  await seedRegistry(db.pool);
  const server = await startEventsServer(t, db.pool, db.url, { eventsToken: undefined });
  const res = await server.post(good(), { headers: { authorization: "Bearer " } });
  assert.equal(res.status, 401);
  assert.match((await res.json()).error, /no events token is configured/);
  assert.deepEqual(await artifacts(db.pool), []);
});

test("bearerTokenMatches compares whole tokens only", () => {
  assert.equal(bearerTokenMatches("Bearer abc", "abc"), true);
  assert.equal(bearerTokenMatches("bearer  abc ", "abc"), true);
  assert.equal(bearerTokenMatches("Bearer ab", "abc"), false);
  assert.equal(bearerTokenMatches("Bearer abcd", "abc"), false);
  assert.equal(bearerTokenMatches("Bearer abc", undefined), false);
  assert.equal(bearerTokenMatches("Bearer ", ""), false);
  assert.equal(bearerTokenMatches(undefined, "abc"), false);
});
