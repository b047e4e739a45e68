import assert from "node:assert/strict";
import test from "node:test";
import type pg from "pg";
import { RegistryClient } from "../../src/registry/client.js";
import { syncRegistry, syncRepository, type SyncDeps } from "../../src/registry/sync.js";
import { freshDatabase } from "../support/db.js";
import { pushImage, pushIndex, pushReferrer, type RegistryTarget } from "../support/oci_push.js";
import { registrySkipReason, startRegistry } from "../support/registry.js";
import { startFaultProxy } from "../support/registry_fault_proxy.js";

const skip = registrySkipReason();

async function addRegistry(pool: pg.Pool, name: string, url: string): Promise<number> {
  const r = await pool.query<{ id: number }>("insert into ebb.registries (name, base_url) values ($1, $2) returning id", [name, url]);
  return r.rows[0]!.id;
}

/** Every catalog row of a registry, stale columns apart, for before/after comparisons. */
async function catalogDump(pool: pg.Pool, registryId: number): Promise<unknown> {
  const q = async (sql: string) => (await pool.query(sql, [registryId])).rows;
  return {
    repositories: await q("select name, deleted_at from ebb.repositories where registry_id = $1 order by name"),
    artifacts: await q(`select r.name, a.digest, a.media_type, a.size, a.pushed_at, a.created_at from ebb.artifacts a
      join ebb.repositories r on r.id = a.repository_id where r.registry_id = $1 order by 1, 2`),
    tags: await q(`select r.name, t.name as tag, t.digest from ebb.tags t join ebb.repositories r on r.id = t.repository_id
      where r.registry_id = $1 order by 1, 2`),
    references: await q(`select r.name, x.digest, x.kind, x.ref_digest, x.platform from ebb.artifact_references x
      join ebb.repositories r on r.id = x.repository_id where r.registry_id = $1 order by 1, 2, 3, 4`),
  };
}

async function tagsOf(pool: pg.Pool, repo: string): Promise<Record<string, string>> {
  const r = await pool.query<{ name: string; digest: string }>(
    "select t.name, t.digest from ebb.tags t join ebb.repositories r on r.id = t.repository_id where r.name = $1 order by 1", [repo]);
  return Object.fromEntries(r.rows.map((row) => [row.name, row.digest]));
}

async function digestsOf(pool: pg.Pool, repo: string): Promise<string[]> {
  const r = await pool.query<{ digest: string }>(
    "select a.digest from ebb.artifacts a join ebb.repositories r on r.id = a.repository_id where r.name = $1 order by 1", [repo]);
  return r.rows.map((row) => row.digest);
}

async function staleOf(pool: pg.Pool): Promise<Record<string, string | null>> {
  const r = await pool.query<{ name: string; stale: boolean; stale_reason: string | null }>(
    "select name, stale, stale_reason from ebb.repositories order by name");
  return Object.fromEntries(r.rows.map((row) => [row.name, row.stale ? row.stale_reason : null]));
}

function cosignTag(digest: string): string {
  return `${digest.replace(":", "-")}.sig`;
}

async function deleteInRegistry(reg: RegistryTarget, repo: string, digest: string): Promise<void> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${digest}`, { method: "DELETE" });
  assert.equal(res.status, 202);
  await res.arrayBuffer();
}

test("sync builds the catalog from the registry and reconciles deletes, new tags and untagged children", { skip }, async (t) => {
  const db = await freshDatabase(t);
  const reg = await startRegistry(t);
  const client = new RegistryClient({ baseUrl: reg.url });
  t.after(() => client.close());
  const registryId = await addRegistry(db.pool, "local", reg.url);
  const deps: SyncDeps = { pool: db.pool, client, registryId };

  const v1 = await pushImage(reg, "team/app", { tag: "v1", created: "2024-05-06T07:08:09Z" });
  const v2 = await pushImage(reg, "team/app", { tag: "v2", format: "docker" });
  await fetch(`${reg.url}/v2/team/app/manifests/latest`, {
    method: "PUT", headers: { "content-type": v2.mediaType }, body: new Uint8Array(v2.bytes),
  }).then((r) => r.arrayBuffer());
  const multi = await pushIndex(reg, "team/app", { tag: "multi" });
  const sig = await pushReferrer(reg, "team/app", v1, { tag: cosignTag(v1.digest) });
  const other = await pushImage(reg, "other", { tag: "1.0" });

  const first = await syncRegistry(deps);
  assert.deepEqual(first.repositories.map((r) => [r.repository, r.status]), [["other", "synced"], ["team/app", "synced"]]);
  assert.deepEqual(await staleOf(db.pool), { other: null, "team/app": null });
  assert.deepEqual(await tagsOf(db.pool, "team/app"), {
    latest: v2.digest, multi: multi.digest, [cosignTag(v1.digest)]: sig.digest, v1: v1.digest, v2: v2.digest,
  });
  assert.deepEqual(await digestsOf(db.pool, "team/app"),
    [v1.digest, v2.digest, multi.digest, ...multi.children.map((c) => c.digest), sig.digest].sort());
  assert.deepEqual(await digestsOf(db.pool, "other"), [other.digest]);

  const art = await db.pool.query(
    "select digest, media_type, size, created_at, artifact_type from ebb.artifacts order by digest");
  const byDigest = new Map(art.rows.map((r) => [r.digest as string, r]));
  assert.equal(byDigest.get(v1.digest).created_at.toISOString(), "2024-05-06T07:08:09.000Z");
  assert.equal(byDigest.get(v2.digest).media_type, "application/vnd.docker.distribution.manifest.v2+json");
  assert.equal(byDigest.get(multi.digest).media_type, "application/vnd.oci.image.index.v1+json");
  assert.equal(byDigest.get(multi.digest).created_at, null);
  assert.equal(Number(byDigest.get(multi.digest).size), multi.size);
  assert.equal(byDigest.get(sig.digest).artifact_type, "application/vnd.example.signature.v1+json");

  const refs = await db.pool.query("select digest, kind, ref_digest, platform from ebb.artifact_references order by kind, platform");
  assert.deepEqual(refs.rows, [
    { digest: multi.digest, kind: "index_child", ref_digest: multi.children[0]!.digest, platform: "linux/amd64" },
    { digest: multi.digest, kind: "index_child", ref_digest: multi.children[1]!.digest, platform: "linux/arm64/v8" },
    { digest: sig.digest, kind: "subject", ref_digest: v1.digest, platform: null },
  ]);

  // a second sync with no change changes nothing
  const dumped = await catalogDump(db.pool, registryId);
  await syncRegistry(deps);
  assert.deepEqual(await catalogDump(db.pool, registryId), dumped);

  // the registry changes: v2 (and so `latest`) deleted, v3 pushed, a catalog row the registry never had
  await deleteInRegistry(reg, "team/app", v2.digest);
  const v3 = await pushImage(reg, "team/app", { tag: "v3" });
  const bogus = `sha256:${"b".repeat(64)}`;
  await db.pool.query(
    `insert into ebb.artifacts (repository_id, digest, media_type, size, pushed_at_source)
     select id, $1, 'application/vnd.oci.image.manifest.v1+json', 1, 'seed' from ebb.repositories where name = 'team/app'`, [bogus]);
  const result = await syncRepository(deps, "team/app");
  assert.equal(result.status, "synced");
  assert.deepEqual(result.counts, { artifactsAdded: 1, artifactsInspected: 0, artifactsRemoved: 2, tagsUpserted: 1, tagsRemoved: 0 });
  assert.deepEqual(await tagsOf(db.pool, "team/app"), {
    multi: multi.digest, [cosignTag(v1.digest)]: sig.digest, v1: v1.digest, v3: v3.digest,
  });
  // the untagged index children survive (confirmed by digest), the deleted and the bogus go
  assert.deepEqual(await digestsOf(db.pool, "team/app"),
    [v1.digest, v3.digest, multi.digest, ...multi.children.map((c) => c.digest), sig.digest].sort());
  assert.deepEqual(await digestsOf(db.pool, "other"), [other.digest], "another repository is untouched");
});

test("registry down during sync: every repository STALE with the reason, nothing else changed", { skip }, async (t) => {
  const db = await freshDatabase(t);
  const reg = await startRegistry(t);
  const proxy = await startFaultProxy(reg.url);
  t.after(() => proxy.stop());
  const client = new RegistryClient({ baseUrl: proxy.url, retry: { attempts: 2, baseDelayMs: 5 } });
  t.after(() => client.close());
  const registryId = await addRegistry(db.pool, "local", proxy.url);
  const deps: SyncDeps = { pool: db.pool, client, registryId };

  const a1 = await pushImage(reg, "a", { tag: "v1" });
  await pushImage(reg, "b", { tag: "v1" });
  await syncRegistry(deps);
  const before = await catalogDump(db.pool, registryId);

  // the registry is gone for good: a real one deleted meanwhile would be "confirmed" by nothing
  await deleteInRegistry(reg, "a", a1.digest);
  proxy.inject(() => true, { kind: "status", status: 503 });
  const down = await syncRegistry(deps);
  assert.match(down.catalogError ?? "", /could not list .*HTTP 503/);
  const stale = await staleOf(db.pool);
  assert.deepEqual(Object.keys(stale), ["a", "b"]);
  for (const reason of Object.values(stale)) assert.match(reason ?? "", /list repositories: HTTP 503 UNKNOWN .* after 2 attempts/);
  assert.deepEqual(await catalogDump(db.pool, registryId), before, "no artifact, tag or repository changed");

  // connection refused: same
  await proxy.stop();
  const refused = await syncRegistry(deps);
  assert.match(refused.catalogError ?? "", /ECONNREFUSED/);
  assert.deepEqual(await catalogDump(db.pool, registryId), before);
});

test("one repository failing part way is STALE with its reason; the others sync; back up clears STALE", { skip }, async (t) => {
  const db = await freshDatabase(t);
  const reg = await startRegistry(t);
  const proxy = await startFaultProxy(reg.url);
  t.after(() => proxy.stop());
  const client = new RegistryClient({ baseUrl: proxy.url, retry: { attempts: 2, baseDelayMs: 5 } });
  t.after(() => client.close());
  const registryId = await addRegistry(db.pool, "local", proxy.url);
  const deps: SyncDeps = { pool: db.pool, client, registryId };

  await pushImage(reg, "good", { tag: "v1" });
  const bad1 = await pushImage(reg, "bad", { tag: "v1" });
  await syncRegistry(deps);
  const badBefore = await digestsOf(db.pool, "bad");

  // bad: v1 deleted and v2 pushed, but its manifests fail to read; good: a new tag
  await deleteInRegistry(reg, "bad", bad1.digest);
  await pushImage(reg, "bad", { tag: "v2" });
  const good2 = await pushImage(reg, "good", { tag: "v2" });
  proxy.inject((m, p) => p.startsWith("/v2/bad/manifests/"), { kind: "status", status: 500 });
  const res = await syncRegistry(deps);
  assert.deepEqual(res.repositories.map((r) => r.status), ["stale", "synced"]);
  const stale = await staleOf(db.pool);
  assert.equal(stale.good, null);
  assert.match(stale.bad ?? "", /^sync could not read the repository: head manifest bad:v\d: HTTP 500/);
  assert.deepEqual(await digestsOf(db.pool, "bad"), badBefore, "nothing removed from the stale repository");
  assert.equal((await tagsOf(db.pool, "good")).v2, good2.digest);

  proxy.clear();
  await syncRegistry(deps);
  assert.deepEqual(await staleOf(db.pool), { bad: null, good: null });
  assert.deepEqual(Object.keys(await tagsOf(db.pool, "bad")), ["v2"]);
});

test("sync holds no database connection while it waits on HTTP", { skip }, async (t) => {
  const db = await freshDatabase(t);
  const reg = await startRegistry(t);
  const proxy = await startFaultProxy(reg.url);
  t.after(() => proxy.stop());
  const client = new RegistryClient({ baseUrl: proxy.url, concurrency: 4 });
  t.after(() => client.close());
  const registryId = await addRegistry(db.pool, "local", proxy.url);
  for (const repo of ["r1", "r2"]) {
    for (let i = 0; i < 6; i++) await pushImage(reg, repo, { tag: `t${i}` });
  }
  proxy.inject(() => true, { kind: "delay", ms: 30 });
  let samples = 0;
  let violations = 0;
  const timer = setInterval(() => {
    if (proxy.inFlight() === 0) return;
    samples++;
    if (db.pool.totalCount - db.pool.idleCount > 0) violations++;
  }, 2);
  try {
    const res = await syncRegistry({ pool: db.pool, client, registryId, repositoryConcurrency: 1 });
    assert.deepEqual(res.repositories.map((r) => r.status), ["synced", "synced"]);
  } finally {
    clearInterval(timer);
  }
  assert.ok(samples > 20, `sampled while HTTP was in flight (${samples})`);
  assert.equal(violations, 0, "a connection was checked out while HTTP was in flight");
  assert.equal((await digestsOf(db.pool, "r1")).length, 6);
});
