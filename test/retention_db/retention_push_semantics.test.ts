// What counts as a push, end to end: a REAL docker-registry notifying ebb of every push and
// delete, a REAL PostgreSQL, retention run through the executions framework, and the registry's
// own API as the judge of what survived.
//  - cosign's tag scheme: a manifest tagged sha256-<hex>.sig (no OCI subject) is an attachment of
//    sha256:<hex>: it takes no latestPushedK place and lives and dies with its subject.
//  - re-tags: tagging an old build does not make it newer for latestPushedK; a digest deleted
//    and pushed again is a new push.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { loadConfig } from "../../src/config/load.js";
import { triggerExecution } from "../../src/executions/trigger.js";
import { createLogger } from "../../src/log/logger.js";
import { startService, type RunningService } from "../../src/service/service.js";
import { TOKEN, startEventsServer, type EventsServer } from "../ingest/support/events_server.js";
import { freshDatabase } from "../support/db.js";
import { OCI_CONFIG, OCI_MANIFEST, pullManifest, pushBlob, pushImage, pushManifest, registryTags, type PushedImage, type PushedManifest } from "../support/oci_push.js";
import { registrySkipReason, startRegistry, type TestRegistry } from "../support/registry.js";
import { waitFor as waitForEvery } from "../support/wait_for.js";

const waitFor = <T>(what: string, fn: () => Promise<T | undefined | null | false>) => waitForEvery(what, fn, 30_000, 50);
const skip = registrySkipReason();
const db = skip ? undefined : await freshDatabase();
const q = async <T = any>(sql: string, params: unknown[] = []) => (await db!.pool.query(sql, params)).rows as T[];
const cleanups: (() => Promise<void> | void)[] = [];
let reg: TestRegistry;
let events: EventsServer;
let service: RunningService;
let registryId: number;

before(async () => {
  if (skip) return;
  events = await startEventsServer({ after: (fn) => cleanups.push(fn) }, db!.pool, db!.url, { eventsFlushIntervalMs: 50 });
  reg = await startRegistry(undefined, { notifications: { url: `${events.url}/events?registry=local`, authorization: `Bearer ${TOKEN}` } });
  registryId = (await q("insert into ebb.registries (name, base_url) values ('local', $1) returning id", [reg.url]))[0].id;
  const config = loadConfig({
    DATABASE_URL: db!.url, EBB_ROLES: "worker", EBB_POOL_SIZE: "8", EBB_WORKER_CONCURRENCY: "4",
    EBB_STOP_CHECK_INTERVAL_MS: "50", EBB_HEARTBEAT_INTERVAL_MS: "500", EBB_DEAD_WORKER_TIMEOUT_MS: "5000",
  });
  service = await startService(config, createLogger("silent"));
});
after(async () => {
  await service?.stop("test done");
  await reg?.stop();
  for (const c of cleanups.reverse()) await c();
});

async function runExecution(kind: string, targetId: number, dryRun = false): Promise<any> {
  const id = await triggerExecution(service.ctx, { kind, targetId, dryRun });
  return waitFor(`execution ${id}`, async () => (await q("select * from ebb.executions where id = $1 and status not in ('pending', 'running')", [id]))[0]);
}

async function sync(): Promise<void> {
  const e = await runExecution("sync", registryId);
  const tasks = await q("select status, error from ebb.tasks where execution_id = $1", [e.id]);
  assert.equal(e.status, "success", JSON.stringify(tasks));
}

async function addPolicy(name: string, project: string, k: number): Promise<number> {
  const id = (await q("insert into ebb.policies (name, registry_id, scope) values ($1, $2, $3) returning id",
    [name, registryId, JSON.stringify({ projects: [{ kind: "glob", pattern: project }] })]))[0].id;
  await q("insert into ebb.policy_rules (policy_id, template, params, tag_selectors) values ($1, 'latestPushedK', $2, $3)",
    [id, JSON.stringify({ latestPushedK: k }), JSON.stringify([{ kind: "glob", decoration: "matches", pattern: "**" }])]);
  return id;
}

async function present(repo: string, digest: string): Promise<boolean> {
  const r = await pullManifest(reg, repo, digest);
  if (r.status !== 200 && r.status !== 404) throw new Error(`unexpected ${r.status} for ${repo}@${digest}`);
  return r.status === 200;
}

async function decisions(executionId: number): Promise<Record<string, { action: string; outcome: string; reason: string; role: string; tags: string[] }>> {
  const rows = await q("select digest, action, outcome, reason, role, tags from ebb.decisions where execution_id = $1", [executionId]);
  return Object.fromEntries(rows.map((r) => [r.digest, r]));
}

/** The catalog holds these digests (with every tag pushed so far): the notifications arrived. */
async function catalogHas(repo: string, digests: string[], tagCount: number): Promise<void> {
  await waitFor(`catalog of ${repo}`, async () => {
    const a = await q("select a.digest from ebb.artifacts a join ebb.repositories r on r.id = a.repository_id where r.name = $1", [repo]);
    const t = await q("select count(*)::int as n from ebb.tags t join ebb.repositories r on r.id = t.repository_id where r.name = $1", [repo]);
    const have = new Set(a.map((x) => x.digest));
    return digests.every((d) => have.has(d)) && t[0].n === tagCount;
  });
}

/**
 * What `cosign sign` pushes by default: an image manifest whose layer is the simple-signing
 * payload, tagged sha256-<hex>.sig, with no OCI `subject` - only the tag names the subject.
 */
async function pushCosignSignature(repo: string, subject: string, suffix: "sig" | "att" | "sbom" = "sig"): Promise<PushedManifest> {
  const payload = Buffer.from(JSON.stringify({ critical: { image: { "docker-manifest-digest": subject }, type: "cosign container image signature" }, optional: { n: Math.random() } }));
  const layer = await pushBlob(reg, repo, payload, "application/vnd.dev.cosign.simplesigning.v1+json");
  const config = await pushBlob(reg, repo, Buffer.from(JSON.stringify({ architecture: "", os: "", rootfs: { type: "layers", diff_ids: [] }, config: {} })), OCI_CONFIG);
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config,
    layers: [{ ...layer, annotations: { "dev.cosignproject.cosign/signature": "MEUCIQDexample" } }],
  };
  return pushManifest(reg, repo, `${subject.replace(":", "-")}.${suffix}`, manifest, OCI_MANIFEST);
}

test("cosign .sig/.att tags: with latestPushedK=2 the two newest images stay with their attachments; the oldest goes with its signature", { skip }, async () => {
  const repo = "sig/app";
  const images: PushedImage[] = [];
  for (let i = 1; i <= 3; i++) images.push(await pushImage(reg, repo, { tag: `i${i}` }));
  const [i1, i2, i3] = images as [PushedImage, PushedImage, PushedImage];
  // the signatures come after every image: by push time they are the newest manifests
  const sig3 = await pushCosignSignature(repo, i3.digest);
  const sig1 = await pushCosignSignature(repo, i1.digest);
  const att2 = await pushCosignSignature(repo, i2.digest, "att");
  // a signature whose image is not in this repository (deleted outside ebb, or a typo)
  const elsewhere = await pushImage(reg, "sigother/app", { tag: "x" });
  const orphan = await pushCosignSignature(repo, elsewhere.digest);
  await catalogHas(repo, [i1.digest, i2.digest, i3.digest, sig3.digest, sig1.digest, att2.digest, orphan.digest], 7);
  await sync();
  const policyId = await addPolicy("sig", "sig", 2);

  const dry = await runExecution("retention", policyId, true);
  assert.equal(dry.status, "success");
  const d = await decisions(dry.id);
  assert.deepEqual(Object.entries(d).filter(([, x]) => x.action === "delete").map(([k]) => k).sort(), [i1.digest, sig1.digest].sort());
  assert.equal(d[i2.digest]!.reason, "retained by rules[0] latestPushedK=2");
  assert.equal(d[i3.digest]!.reason, "retained by rules[0] latestPushedK=2");
  assert.equal(d[sig3.digest]!.role, "referrer");
  assert.equal(d[sig3.digest]!.reason, `attachment of ${i3.digest} (cosign .sig tag), kept with its subject`);
  assert.equal(d[att2.digest]!.reason, `attachment of ${i2.digest} (cosign .att tag), kept with its subject`);
  assert.equal(d[sig1.digest]!.reason, `attachment of ${i1.digest} (cosign .sig tag), deleted with its subject`);
  assert.equal(d[orphan.digest]!.action, "retain");
  assert.match(d[orphan.digest]!.reason, /whose subject is not in this repository/);

  const real = await runExecution("retention", policyId);
  assert.equal(real.status, "success", JSON.stringify(await q("select * from ebb.tasks where execution_id = $1", [real.id])));
  for (const m of [i2, i3, sig3, att2, orphan]) assert.ok(await present(repo, m.digest), `${m.digest} must survive`);
  assert.equal(await present(repo, i1.digest), false, "i1 deleted");
  assert.equal(await present(repo, sig1.digest), false, "i1's signature deleted with it");
  assert.deepEqual(await registryTags(reg, repo), [`${i2.digest.replace(":", "-")}.att`, `${i3.digest.replace(":", "-")}.sig`, `${elsewhere.digest.replace(":", "-")}.sig`, "i2", "i3"].sort());
  assert.ok(await present("sigother/app", elsewhere.digest), "out of scope");
  const r = await decisions(real.id);
  assert.equal(r[sig1.digest]!.outcome, "deleted");
  assert.equal(r[i1.digest]!.outcome, "deleted");
});

test("re-tags: tagging an old build does not make it newer for latestPushedK; a digest deleted and pushed again is a new push", { skip }, async () => {
  const repo = "rt/app";
  const builds: PushedImage[] = [];
  for (let i = 1; i <= 4; i++) builds.push(await pushImage(reg, repo, { tag: `build-${i}` }));
  const [b1, b2, b3, b4] = builds as [PushedImage, PushedImage, PushedImage, PushedImage];
  await catalogHas(repo, builds.map((b) => b.digest), 4);
  // promote the oldest build: the same manifest pushed under a new tag
  await pushManifest(reg, repo, "release-1", b1.bytes, b1.mediaType);
  await catalogHas(repo, builds.map((b) => b.digest), 5);
  const times = await q<{ digest: string; pushed_at: Date; release: Date | null }>(
    `select a.digest, a.pushed_at, (select t.pushed_at from ebb.tags t where t.repository_id = a.repository_id and t.name = 'release-1' and t.digest = a.digest) as release
       from ebb.artifacts a join ebb.repositories r on r.id = a.repository_id where r.name = $1`, [repo]);
  const byDigest = new Map(times.map((t) => [t.digest, t]));
  assert.ok(byDigest.get(b1.digest)!.pushed_at < byDigest.get(b2.digest)!.pushed_at, "b1's push is still its first push");
  assert.ok(byDigest.get(b1.digest)!.release! > byDigest.get(b4.digest)!.pushed_at, "the release tag's push is recorded");
  await sync();
  const policyId = await addPolicy("rt", "rt", 2);

  const first = await runExecution("retention", policyId);
  assert.equal(first.status, "success", JSON.stringify(await q("select * from ebb.tasks where execution_id = $1", [first.id])));
  for (const b of [b3, b4]) assert.ok(await present(repo, b.digest), `${b.digest} is one of the two newest builds: must survive`);
  for (const b of [b1, b2]) assert.equal(await present(repo, b.digest), false, `${b.digest} is older than the two newest builds`);
  const d = await decisions(first.id);
  assert.match(d[b1.digest]!.reason, /^not retained by any rule \(pushed .*; a tag pushed onto it later does not make it newer for count rules\)$/);

  // b2's manifest is gone from the registry; pushing the same bytes again is a new push
  await waitFor("b2's delete notified", async () => (await q("select 1 from ebb.artifacts where digest = $1", [b2.digest])).length === 0);
  await pushManifest(reg, repo, "build-2-again", b2.bytes, b2.mediaType);
  await catalogHas(repo, [b2.digest, b3.digest, b4.digest], 3);
  await sync();
  const second = await runExecution("retention", policyId);
  assert.equal(second.status, "success");
  assert.ok(await present(repo, b2.digest), "pushed again after its deletion: the newest push");
  assert.ok(await present(repo, b4.digest));
  assert.equal(await present(repo, b3.digest), false);
});
