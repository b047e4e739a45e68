/**
 * Artifacts first learned from push events (no subject, no config `created`, no artifactType,
 * no index platforms in a push notification) are read in full by the next sync and marked
 * inspected; until then artifacts.inspected_at is null (migrations/0001_schema.sql).
 * Real docker-registry, real ingest (the registry's own notifications, or the ingest's write
 * path with envelopes), real PostgreSQL.
 */
import assert from "node:assert/strict";
import test from "node:test";
import type pg from "pg";
import { classifyEvents } from "../../src/ingest/catalog_change.js";
import { writeCatalogChanges } from "../../src/ingest/catalog_write_sql.js";
import { parseEnvelope } from "../../src/ingest/event_schema.js";
import { RegistryClient } from "../../src/registry/client.js";
import { syncRepository, type SyncDeps } from "../../src/registry/sync.js";
import { freshDatabase } from "../support/db.js";
import { waitUntil } from "../support/wait_for.js";
import { pushImage, pushIndex, pushManifest, pushReferrer, type PushedManifest } from "../support/oci_push.js";
import { registrySkipReason, startRegistry } from "../support/registry.js";
import { startFaultProxy } from "../support/registry_fault_proxy.js";
import { TOKEN, envelope, pushEvent, seedRegistry, startEventsServer } from "../ingest/support/events_server.js";

const skip = registrySkipReason();
const REPO = "team/app";
const SIGNATURE = "application/vnd.example.signature.v1+json";
const SBOM = "application/vnd.example.sbom.v1+json";

interface Row {
  digest: string;
  media_type: string;
  artifact_type: string | null;
  size: number;
  created_at: Date | null;
  pushed_at: Date;
  pushed_at_source: string;
  inspected_at: Date | null;
}

async function rows(pool: pg.Pool): Promise<Map<string, Row>> {
  const r = await pool.query<Row>(
    `select a.digest, a.media_type, a.artifact_type, a.size::int as size, a.created_at, a.pushed_at, a.pushed_at_source, a.inspected_at
       from ebb.artifacts a join ebb.repositories rp on rp.id = a.repository_id where rp.name = $1 order by a.digest`, [REPO]);
  return new Map(r.rows.map((row) => [row.digest, row]));
}

async function references(pool: pg.Pool): Promise<Array<{ digest: string; kind: string; ref_digest: string; platform: string | null }>> {
  const r = await pool.query(
    `select x.digest, x.kind, x.ref_digest, x.platform from ebb.artifact_references x
       join ebb.repositories rp on rp.id = x.repository_id where rp.name = $1 order by x.kind, x.digest, x.ref_digest`, [REPO]);
  return r.rows;
}

async function staleReason(pool: pg.Pool): Promise<string | null> {
  const r = await pool.query<{ stale_reason: string | null }>("select stale_reason from ebb.repositories where name = $1", [REPO]);
  return r.rows[0]?.stale_reason ?? null;
}

/** What the retention owner asks before deciding: does the repository hold uninspected rows? */
async function uninspectedCount(pool: pg.Pool): Promise<number> {
  const r = await pool.query<{ n: number }>(
    `select count(*)::int as n from ebb.artifacts a join ebb.repositories rp on rp.id = a.repository_id
      where rp.name = $1 and a.inspected_at is null`, [REPO]);
  return r.rows[0]!.n;
}

/** Push events through the ingest's own parse, classification and catalog write. */
async function ingestPushes(pool: pg.Pool, registryId: number, events: object[]): Promise<void> {
  const parsed = parseEnvelope(envelope(...events));
  assert.ok(parsed.ok, parsed.ok ? "" : parsed.reason);
  const classified = classifyEvents(parsed.envelope.events, []);
  assert.ok(classified.ok);
  const client = await pool.connect();
  try {
    await writeCatalogChanges(client, registryId, classified.changes);
  } finally {
    client.release();
  }
}

function pushOf(m: PushedManifest, tag?: string) {
  return pushEvent({ repo: REPO, digest: m.digest, mediaType: m.mediaType, size: m.size, at: new Date(), ...(tag ? { tag } : {}) });
}

test("artifacts known only from the registry's push notifications are read by the next sync: subject, platforms, created", { skip }, async (t) => {
  const db = await freshDatabase(t);
  const registryId = await seedRegistry(db.pool, "local");
  const server = await startEventsServer(t, db.pool, db.url, { eventsFlushIntervalMs: 50 });
  const reg = await startRegistry(t, { notifications: { url: `${server.url}/events?registry=local`, authorization: `Bearer ${TOKEN}` } });
  const client = new RegistryClient({ baseUrl: reg.url });
  t.after(() => client.close());
  const deps: SyncDeps = { pool: db.pool, client, registryId };

  const image = await pushImage(reg, REPO, { tag: "v1", created: "2024-05-06T07:08:09Z" });
  const index = await pushIndex(reg, REPO, { tag: "multi", created: "2024-01-02T03:04:05Z" });
  // an OCI 1.1 referrer pushed by digest (untagged: retention's prime suspect) and a tagged one
  const signature = await pushReferrer(reg, REPO, image, { artifactType: SIGNATURE });
  const sbom = await pushReferrer(reg, REPO, index, { artifactType: SBOM, tag: `${index.digest.replace(":", "-")}.sbom` });
  const all = [image.digest, index.digest, ...index.children.map((c) => c.digest), signature.digest, sbom.digest].sort();

  // the ingest alone: every artifact is there, none inspected, referrers look like plain images
  const before = await waitUntil("pushed artifacts in the catalog", () => rows(db.pool), (r) => r.size === all.length);
  assert.deepEqual([...before.keys()], all);
  for (const row of before.values()) {
    assert.equal(row.pushed_at_source, "event");
    assert.equal(row.inspected_at, null, `${row.digest} uninspected after its push event`);
    assert.equal(row.created_at, null);
    assert.equal(row.artifact_type, null);
  }
  assert.deepEqual((await references(db.pool)).filter((r) => r.kind === "subject"), [], "a push event carries no subject");
  assert.equal(await uninspectedCount(db.pool), all.length);

  const result = await syncRepository(deps, REPO);
  assert.equal(result.status, "synced", result.reason);
  assert.deepEqual(result.counts, { artifactsAdded: 0, artifactsInspected: all.length, artifactsRemoved: 0, tagsUpserted: 0, tagsRemoved: 0 });
  assert.equal(await staleReason(db.pool), null);

  const after = await rows(db.pool);
  assert.deepEqual([...after.keys()], all, "nothing added or removed");
  for (const row of after.values()) {
    assert.ok(row.inspected_at instanceof Date, `${row.digest} inspected`);
    assert.equal(row.pushed_at_source, "event", "push time and its source stay the event's");
    assert.equal(row.pushed_at.getTime(), before.get(row.digest)!.pushed_at.getTime());
  }
  assert.equal(after.get(image.digest)!.created_at?.toISOString(), "2024-05-06T07:08:09.000Z");
  for (const child of index.children) assert.equal(after.get(child.digest)!.created_at?.toISOString(), "2024-01-02T03:04:05.000Z");
  assert.equal(after.get(index.digest)!.created_at, null, "an index has no config");
  assert.equal(after.get(signature.digest)!.artifact_type, SIGNATURE);
  assert.equal(after.get(sbom.digest)!.artifact_type, SBOM);
  assert.equal(after.get(signature.digest)!.created_at, null, "a referrer's empty config is not an image config");

  const expected = [
    ...index.children.map((c) => ({
      digest: index.digest, kind: "index_child", ref_digest: c.digest,
      platform: [c.platform!.os, c.platform!.architecture, c.platform!.variant].filter(Boolean).join("/"),
    })),
    { digest: sbom.digest, kind: "subject", ref_digest: index.digest, platform: null },
    { digest: signature.digest, kind: "subject", ref_digest: image.digest, platform: null },
  ].sort((a, b) => `${a.kind} ${a.digest} ${a.ref_digest}`.localeCompare(`${b.kind} ${b.digest} ${b.ref_digest}`));
  assert.deepEqual(await references(db.pool), expected);
  assert.deepEqual(expected.slice(0, 2).map((r) => r.platform).sort(), ["linux/amd64", "linux/arm64/v8"]);
  assert.equal(await uninspectedCount(db.pool), 0);

  // a second sync reads nothing again and changes nothing
  const again = await syncRepository(deps, REPO);
  assert.equal(again.counts?.artifactsInspected, 0);
  assert.deepEqual(await rows(db.pool), after);

  // the same manifest pushed again (same digest, new tag): the tag is new, the artifact's push
  // time (when it arrived) and its inspection stay
  await pushManifest(reg, REPO, "v1-again", image.bytes, image.mediaType);
  await waitUntil("re-push event", () => db.pool.query("select 1 from ebb.tags where name = 'v1-again'"), (r) => r.rowCount === 1);
  const repushed = (await rows(db.pool)).get(image.digest)!;
  assert.equal(repushed.pushed_at.getTime(), after.get(image.digest)!.pushed_at.getTime(), "a re-tag is not a new push of the artifact");
  assert.equal(repushed.inspected_at?.getTime(), after.get(image.digest)!.inspected_at!.getTime());
  assert.equal(repushed.created_at?.toISOString(), "2024-05-06T07:08:09.000Z");

  // a new referrer pushed after the sync is uninspected again until the next sync
  const late = await pushReferrer(reg, REPO, image, { artifactType: SIGNATURE });
  await waitUntil("late referrer", () => rows(db.pool), (r) => r.has(late.digest));
  assert.equal(await uninspectedCount(db.pool), 1);
  assert.equal((await syncRepository(deps, REPO)).counts?.artifactsInspected, 1);
  assert.ok((await references(db.pool)).some((r) => r.digest === late.digest && r.kind === "subject" && r.ref_digest === image.digest));
  assert.equal(await uninspectedCount(db.pool), 0);
  // stop the registry before the events server it notifies (the other order holds the
  // file's end for ~30 s)
  await reg.stop();
  await server.stop();
});

test("a failure while inspecting marks the repository STALE with the reason and leaves every artifact uninspected", { skip }, async (t) => {
  const db = await freshDatabase(t);
  const registryId = await seedRegistry(db.pool, "local");
  const reg = await startRegistry(t);
  const proxy = await startFaultProxy(reg.url);
  t.after(() => proxy.stop());
  const client = new RegistryClient({ baseUrl: proxy.url, retry: { attempts: 2, baseDelayMs: 5 } });
  t.after(() => client.close());
  const deps: SyncDeps = { pool: db.pool, client, registryId };

  const image = await pushImage(reg, REPO, { tag: "v1" });
  const signature = await pushReferrer(reg, REPO, image);
  await ingestPushes(db.pool, registryId, [pushOf(image, "v1"), pushOf(signature)]);
  const before = await rows(db.pool);
  assert.equal(await uninspectedCount(db.pool), 2);

  // the referrer's manifest cannot be read (tags and the image still answer)
  proxy.inject((m, p) => m === "GET" && p === `/v2/${REPO}/manifests/${signature.digest}`, { kind: "status", status: 500 });
  const failed = await syncRepository(deps, REPO);
  assert.equal(failed.status, "stale");
  const reason = await staleReason(db.pool);
  assert.match(reason ?? "", new RegExp(`^sync could not read the repository: get manifest ${REPO}@${signature.digest}: HTTP 500`));
  assert.equal(failed.reason, reason);
  assert.deepEqual(await rows(db.pool), before, "no row changed: the image read fine but nothing is written from a partial read");
  assert.deepEqual(await references(db.pool), []);
  assert.equal(await uninspectedCount(db.pool), 2);

  // the config blob of the image fails (connection reset): also a partial read
  proxy.clear();
  proxy.inject((m, p) => m === "GET" && p === `/v2/${REPO}/blobs/${image.config.digest}`, { kind: "reset" });
  const reset = await syncRepository(deps, REPO);
  assert.equal(reset.status, "stale");
  assert.match(await staleReason(db.pool) ?? "", new RegExp(`get blob ${REPO}@${image.config.digest}`));
  assert.deepEqual(await rows(db.pool), before);

  // the registry answers again: inspected, STALE cleared
  proxy.clear();
  const ok = await syncRepository(deps, REPO);
  assert.equal(ok.status, "synced", ok.reason);
  assert.equal(await staleReason(db.pool), null);
  assert.equal(await uninspectedCount(db.pool), 0);
  assert.deepEqual(await references(db.pool), [{ digest: signature.digest, kind: "subject", ref_digest: image.digest, platform: null }]);
});

test("an uninspected artifact the registry no longer has is removed; its untagged neighbours and subject survive", { skip }, async (t) => {
  const db = await freshDatabase(t);
  const registryId = await seedRegistry(db.pool, "local");
  const reg = await startRegistry(t);
  const client = new RegistryClient({ baseUrl: reg.url });
  t.after(() => client.close());
  const deps: SyncDeps = { pool: db.pool, client, registryId };

  const image = await pushImage(reg, REPO, { tag: "v1" });
  const kept = await pushReferrer(reg, REPO, image, { artifactType: SIGNATURE });
  const dropped = await pushReferrer(reg, REPO, image, { artifactType: SIGNATURE });
  // an untagged index pushed by digest whose children ebb never heard of (no references in
  // the event): its children are found through it
  const index = await pushIndex(reg, REPO);
  await ingestPushes(db.pool, registryId, [pushOf(image, "v1"), pushOf(kept), pushOf(dropped)]);
  await ingestPushes(db.pool, registryId, [pushEvent({ repo: REPO, digest: index.digest, mediaType: index.mediaType, size: index.size, at: new Date() })]);
  assert.match(await staleReason(db.pool) ?? "", /index .* was pushed \(notification without references/);
  // deleted in the registry while its delete notification was lost
  const del = await fetch(`${reg.url}/v2/${REPO}/manifests/${dropped.digest}`, { method: "DELETE" });
  assert.equal(del.status, 202);
  await del.arrayBuffer();

  const result = await syncRepository(deps, REPO);
  assert.equal(result.status, "synced", result.reason);
  assert.equal(await staleReason(db.pool), null);
  assert.deepEqual([...(await rows(db.pool)).keys()],
    [image.digest, kept.digest, index.digest, ...index.children.map((c) => c.digest)].sort(), "only the deleted referrer left");
  assert.equal(await uninspectedCount(db.pool), 0, "the index's children were added inspected");
  const refs = await references(db.pool);
  assert.deepEqual(refs.filter((r) => r.kind === "subject"), [{ digest: kept.digest, kind: "subject", ref_digest: image.digest, platform: null }]);
  assert.deepEqual(refs.filter((r) => r.kind === "index_child").map((r) => r.platform).sort(), ["linux/amd64", "linux/arm64/v8"]);
});

test("a seeded artifact counts as inspected unless it says when; rows from sync or push events are not", async (t) => {
  const db = await freshDatabase(t);
  const registryId = await seedRegistry(db.pool, "local");
  const repo = await db.pool.query<{ id: number }>("insert into ebb.repositories (registry_id, name) values ($1, $2) returning id", [registryId, REPO]);
  const repositoryId = repo.rows[0]!.id;
  const insert = (digest: string, source: string) => db.pool.query(
    `insert into ebb.artifacts (repository_id, digest, media_type, size, pushed_at_source)
     values ($1, $2, 'application/vnd.oci.image.manifest.v1+json', 1, $3)`, [repositoryId, digest, source]);
  const d = (c: string) => `sha256:${c.repeat(64)}`;
  const inspected = async () => Object.fromEntries((await db.pool.query<{ digest: string; inspected: boolean }>(
    "select digest, inspected_at is not null as inspected from ebb.artifacts order by digest")).rows.map((r) => [r.digest, r.inspected]));
  await insert(d("4"), "seed");
  await insert(d("5"), "sync");
  await insert(d("6"), "event");
  await db.pool.query(
    `insert into ebb.artifacts (repository_id, digest, media_type, size, pushed_at_source, inspected_at)
     values ($1, $2, 'application/vnd.oci.image.manifest.v1+json', 1, 'seed', '2020-01-01Z')`, [repositoryId, d("7")]);
  assert.deepEqual(await inspected(), { [d("4")]: true, [d("5")]: false, [d("6")]: false, [d("7")]: true });
  const explicit = await db.pool.query<{ inspected_at: Date }>("select inspected_at from ebb.artifacts where digest = $1", [d("7")]);
  assert.equal(explicit.rows[0]!.inspected_at.toISOString(), "2020-01-01T00:00:00.000Z", "an explicit value is kept");
});
