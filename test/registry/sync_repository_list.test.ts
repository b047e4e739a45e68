// Registries without a catalog (GHCR, Docker Hub, Quay refuse /v2/_catalog to ordinary
// accounts): a real docker-registry behind a proxy that refuses _catalog. Without a list the
// sync says so and how to set one; with registries.repositories the sync never asks for
// _catalog, reads the names given, and the patterns select among the repositories ebb knows.
import assert from "node:assert/strict";
import test from "node:test";
import type pg from "pg";
import { RegistryClient } from "../../src/registry/client.js";
import { syncRegistry, type SyncDeps } from "../../src/registry/sync.js";
import { freshDatabase } from "../support/db.js";
import { pushImage } from "../support/oci_push.js";
import { registrySkipReason, startRegistry } from "../support/registry.js";
import { startFaultProxy } from "../support/registry_fault_proxy.js";

const skip = registrySkipReason();

async function tagsOf(pool: pg.Pool): Promise<string[]> {
  const r = await pool.query<{ t: string }>(
    "select r.name || ':' || t.name as t from ebb.tags t join ebb.repositories r on r.id = t.repository_id order by 1");
  return r.rows.map((row) => row.t);
}

for (const status of [401, 403, 404]) {
  test(`a registry refusing /v2/_catalog (HTTP ${status}) gets a message saying so and how to list the repositories`, { skip, timeout: 60_000 }, async (t) => {
    const db = await freshDatabase(t);
    const reg = await startRegistry(t);
    const proxy = await startFaultProxy(reg.url);
    t.after(() => proxy.stop());
    proxy.inject((_m, p) => p.startsWith("/v2/_catalog"), {
      kind: "status", status, body: JSON.stringify({ errors: [{ code: status === 404 ? "NOT_FOUND" : "DENIED", message: "no catalog for you" }] }),
    });
    const client = new RegistryClient({ baseUrl: proxy.url });
    t.after(() => client.close());
    const { rows } = await db.pool.query<{ id: number }>("insert into ebb.registries (name, base_url) values ('ghcr', $1) returning id", [proxy.url]);
    await pushImage(reg, "team/app", { tag: "v1" });

    const result = await syncRegistry({ pool: db.pool, client, registryId: rows[0]!.id });
    assert.ok(result.catalogError, "the listing failed");
    assert.match(result.catalogError, new RegExp(`does not serve /v2/_catalog to this account \\(HTTP ${status}`));
    assert.match(result.catalogError, /GHCR, Docker Hub and Quay/);
    assert.match(result.catalogError, /ebb sync repositories ghcr team\/app/);
    assert.match(result.catalogError, /update ebb\.registries set repositories = '\{team\/app,team\/\*\}' where name = 'ghcr'/);
    assert.deepEqual(await tagsOf(db.pool), [], "nothing written");
  });
}

test("with registries.repositories set, a sync reads the listed names and the known repositories its patterns match, never _catalog", { skip, timeout: 60_000 }, async (t) => {
  const db = await freshDatabase(t);
  const reg = await startRegistry(t);
  const proxy = await startFaultProxy(reg.url);
  t.after(() => proxy.stop());
  proxy.inject((_m, p) => p.startsWith("/v2/_catalog"), { kind: "status", status: 401 });
  const client = new RegistryClient({ baseUrl: proxy.url });
  t.after(() => client.close());
  const { rows } = await db.pool.query<{ id: number }>("insert into ebb.registries (name, base_url) values ('ghcr', $1) returning id", [proxy.url]);
  const registryId = rows[0]!.id;
  const deps: SyncDeps = { pool: db.pool, client, registryId };

  const app = await pushImage(reg, "team/app", { tag: "v1" });
  const tool = await pushImage(reg, "tools/lint", { tag: "1.0" });
  await pushImage(reg, "tools/fmt", { tag: "2.0" }); // matches the pattern, but ebb never learnt of it
  await pushImage(reg, "other/x", { tag: "x" }); // neither listed nor matched
  // tools/lint and other/x known to the catalog, as push notifications would have recorded them
  for (const [repo, img] of [["tools/lint", tool], ["other/x", undefined]] as const) {
    const r = await db.pool.query<{ id: number }>("insert into ebb.repositories (registry_id, name) values ($1, $2) returning id", [registryId, repo]);
    if (img) {
      await db.pool.query(
        "insert into ebb.artifacts (repository_id, digest, media_type, size, pushed_at_source) values ($1, $2, $3, $4, 'event')",
        [r.rows[0]!.id, img.digest, img.mediaType, img.size]);
    }
  }

  await assert.rejects(
    db.pool.query("update ebb.registries set repositories = '{}' where id = $1", [registryId]),
    /registries\.repositories: empty list/);
  await assert.rejects(
    db.pool.query("update ebb.registries set repositories = '{Team/App}' where id = $1", [registryId]),
    /registries\.repositories: 'Team\/App' is not a repository name or pattern/);
  await db.pool.query("update ebb.registries set repositories = '{team/app,tools/*,gone/never}' where id = $1", [registryId]);

  const result = await syncRegistry(deps);
  assert.equal(result.catalogError, undefined);
  assert.deepEqual(result.repositories.map((r) => [r.repository, r.status]).sort(),
    [["gone/never", "gone"], ["team/app", "synced"], ["tools/lint", "synced"]]);
  assert.equal(proxy.requests.filter((r) => r.path.startsWith("/v2/_catalog")).length, 0, "the catalog is never asked for");
  assert.deepEqual(await tagsOf(db.pool), ["team/app:v1", "tools/lint:1.0"]);
  const digests = await db.pool.query("select digest from ebb.artifacts order by 1");
  assert.deepEqual(digests.rows.map((r) => r.digest), [app.digest, tool.digest].sort());
  const stale = await db.pool.query("select name from ebb.repositories where stale");
  assert.deepEqual(stale.rows, [], "nothing STALE; other/x (not selected) is left as it was");

  // a bad pattern (passes the character check, not the glob grammar) fails the sync naming the column
  await db.pool.query("update ebb.registries set repositories = '{team/[app}' where id = $1", [registryId]);
  const bad = await syncRegistry(deps);
  assert.match(bad.catalogError ?? "", /registries\.repositories: "team\/\[app" is not a valid pattern/);
});
