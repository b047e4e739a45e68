import assert from "node:assert/strict";
import { test } from "node:test";
import { freshDatabase } from "../support/db.js";
import { pullManifest, pushImage, pushIndex } from "../support/oci_push.js";
import { registrySkipReason, startRegistry } from "../support/registry.js";
import { waitUntil } from "../support/wait_for.js";
import { TOKEN, artifacts, seedRegistry, startEventsServer, tags } from "./support/events_server.js";

/** Poll `read` every 50 ms until `ok` accepts its value. */
const waitFor = <T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 60_000): Promise<T> =>
  waitUntil(what, read, ok, ms, 50);

test("a real docker-registry notifies ebb: push, pull and delete through its HTTP API update the catalog", { skip: registrySkipReason() }, async (t) => {
  const db = await freshDatabase(t);
  await seedRegistry(db.pool, "local");
  const server = await startEventsServer(t, db.pool, db.url, { eventsFlushIntervalMs: 50 });
  const reg = await startRegistry(t, { notifications: { url: `${server.url}/events?registry=local`, authorization: `Bearer ${TOKEN}` } });

  const before = Date.now();
  const image = await pushImage(reg, "team/app", { tag: "v1" });
  const other = await pushImage(reg, "team/app", { tag: "v2" });
  const index = await pushIndex(reg, "team/app", { tag: "multi" });

  const rows = await waitFor("pushed artifacts in the catalog", () => artifacts(db.pool), (r) => r.length === 5);
  const byDigest = new Map(rows.map((r) => [r.digest, r]));
  for (const d of [image.digest, other.digest, index.digest, ...index.children.map((c) => c.digest)]) {
    const row = byDigest.get(d);
    assert.ok(row, `artifact ${d} in the catalog`);
    assert.equal(row.repository, "team/app");
    assert.equal(row.pushed_at_source, "event");
    assert.ok(row.pushed_at.getTime() >= before - 5_000, "pushed_at is the push time");
    assert.equal(row.pulled_at, null);
  }
  assert.equal(byDigest.get(index.digest)!.media_type, "application/vnd.oci.image.index.v1+json");
  assert.equal(byDigest.get(image.digest)!.size, image.size);
  assert.deepEqual((await tags(db.pool)).map((r) => [r.name, r.digest]), [["multi", index.digest], ["v1", image.digest], ["v2", other.digest]]);
  const refs = await db.pool.query("select ref_digest from ebb.artifact_references where digest = $1 and kind = 'index_child' order by 1", [index.digest]);
  assert.deepEqual(refs.rows.map((r) => r.ref_digest), index.children.map((c) => c.digest).sort(), "index children recorded (includereferences)");
  assert.equal(server.ingest.counters.eventsIgnored.blob > 0, true, "blob uploads were notified and ignored");

  // Pull v1 by tag and the index's first child by digest through the registry's API.
  const pullStart = Date.now();
  assert.equal((await pullManifest(reg, "team/app", "v1")).status, 200);
  assert.equal((await pullManifest(reg, "team/app", index.children[0]!.digest)).status, 200);
  await waitFor("pulls flushed", () => artifacts(db.pool), (r) =>
    r.find((a) => a.digest === image.digest)?.pulled_at != null && r.find((a) => a.digest === index.children[0]!.digest)?.pulled_at != null);
  const afterPull = new Map((await artifacts(db.pool)).map((r) => [r.digest, r]));
  assert.ok(afterPull.get(image.digest)!.pulled_at!.getTime() >= pullStart - 5_000);
  assert.equal(afterPull.get(other.digest)!.pulled_at, null, "v2 was not pulled");
  assert.equal(afterPull.get(index.digest)!.pulled_at, null, "the index was not pulled");
  const tagRows = await tags(db.pool);
  assert.ok(tagRows.find((r) => r.name === "v1")!.pulled_at !== null, "pulled by tag");
  assert.equal(tagRows.find((r) => r.name === "multi")!.pulled_at, null);

  // Delete v1's manifest through the registry: artifact and tag leave the catalog, the rest survives.
  const del = await fetch(`${reg.url}/v2/team/app/manifests/${image.digest}`, { method: "DELETE" });
  assert.equal(del.status, 202);
  await waitFor("deleted artifact gone", () => artifacts(db.pool), (r) => !r.some((a) => a.digest === image.digest));
  const left = await artifacts(db.pool);
  assert.deepEqual(left.map((r) => r.digest).sort(), [other.digest, index.digest, ...index.children.map((c) => c.digest)].sort());
  assert.deepEqual((await tags(db.pool)).map((r) => r.name), ["multi", "v2"]);
  assert.equal(server.ingest.counters.envelopesRefused.bad_request, 0, "every envelope of the real registry parsed");
});

test("a registry sending the wrong token changes nothing (and keeps retrying)", { skip: registrySkipReason() }, async (t) => {
  const db = await freshDatabase(t);
  await seedRegistry(db.pool, "local");
  const server = await startEventsServer(t, db.pool, db.url, { eventsFlushIntervalMs: 50 });
  const reg = await startRegistry(t, { notifications: { url: `${server.url}/events?registry=local`, authorization: "Bearer not-the-token" } });
  await pushImage(reg, "team/app", { tag: "v1" });
  await waitFor("refusals", async () => server.ingest.counters.envelopesRefused.unauthorized, (n) => n >= 2);
  assert.deepEqual(await artifacts(db.pool), []);
});
