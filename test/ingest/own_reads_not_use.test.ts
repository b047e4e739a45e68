// ebb's own registry reads are never use: with notifications connected, a sync's manifest
// reads reach ebb as pull events with the user agent ebb/<version> and leave pulled_at alone,
// even when the user set their own EBB_EVENTS_IGNORE_USER_AGENTS list. A pull by anyone else
// still counts. Real docker-registry posting to a real ingest over HTTP.
import assert from "node:assert/strict";
import { test } from "node:test";
import { RegistryClient } from "../../src/registry/client.js";
import { syncRegistry } from "../../src/registry/sync.js";
import { EBB_USER_AGENT } from "../../src/registry/user_agent.js";
import { freshDatabase } from "../support/db.js";
import { pullManifest, pushImage, pushIndex } from "../support/oci_push.js";
import { registrySkipReason, startRegistry } from "../support/registry.js";
import { waitFor } from "../support/wait_for.js";
import { TOKEN, artifacts, seedRegistry, startEventsServer, tags } from "./support/events_server.js";

test("a sync with notifications connected leaves pulled_at untouched; another client's pull sets it", { skip: registrySkipReason(), timeout: 90_000 }, async (t) => {
  const db = await freshDatabase(t);
  const registryId = await seedRegistry(db.pool, "local");
  const server = await startEventsServer(t, db.pool, db.url, { eventsFlushIntervalMs: 50, eventsIgnoreUserAgents: "Trivy,Clair" });
  const reg = await startRegistry(t, { notifications: { url: `${server.url}/events?registry=local`, authorization: `Bearer ${TOKEN}` } });
  assert.match(EBB_USER_AGENT, /^ebb\/\d+\.\d+\.\d+/);

  const v1 = await pushImage(reg, "team/app", { tag: "v1" });
  const v2 = await pushImage(reg, "team/app", { tag: "v2" });
  const multi = await pushIndex(reg, "team/app", { tag: "multi" });
  await waitFor("the pushes in the catalog", async () => (await artifacts(db.pool)).length === 5);

  // the sync reads every manifest (all are uninspected: known from push events only)
  const client = new RegistryClient({ baseUrl: reg.url });
  t.after(() => client.close());
  const result = await syncRegistry({ pool: db.pool, client, registryId });
  assert.deepEqual(result.repositories.map((r) => [r.repository, r.status]), [["team/app", "synced"]]);
  const inspected = await db.pool.query("select count(*)::int as n from ebb.artifacts where inspected_at is not null");
  assert.equal(inspected.rows[0].n, 5, "the sync read all five manifests");
  // the registry notified those reads: wait until the ingest has seen them, then flush
  await waitFor("the sync's pull events ignored by user agent", () => server.ingest.counters.eventsIgnored.user_agent >= 5, 30_000, 50);
  assert.equal(server.ingest.counters.eventsAccepted.pull, 0, "no pull event of the sync was taken as use");
  assert.equal(await server.ingest.flush(), true);
  for (const row of await artifacts(db.pool)) assert.equal(row.pulled_at, null, `${row.digest} pulled_at untouched by the sync`);
  for (const row of await tags(db.pool)) assert.equal(row.pulled_at, null, `tag ${row.name} pulled_at untouched by the sync`);

  // a real client's pull (another user agent) is use
  assert.equal((await pullManifest(reg, "team/app", "v2")).status, 200);
  await waitFor("v2's pull flushed", async () => (await artifacts(db.pool)).find((a) => a.digest === v2.digest)?.pulled_at != null, 30_000, 50);
  const after = new Map((await artifacts(db.pool)).map((a) => [a.digest, a.pulled_at]));
  assert.equal(after.get(v1.digest), null);
  assert.equal(after.get(multi.digest), null);
});
