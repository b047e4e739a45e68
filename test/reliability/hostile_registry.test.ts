// A registry that answers with hostile or broken data (the real docker-registry, with its
// answers rewritten by the fault proxy): repository and tag names that look like SQL or
// paths, huge tag lists, oversize and malformed pages, bad digests. A sync (through the
// executions framework, as `ebb sync` runs it) must never send a request built from such a
// name, never store one, and never take a partial read as the truth: the repository concerned
// is STALE with the reason (so retention refuses it) and everything else syncs.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { loadConfig } from "../../src/config/load.js";
import { triggerExecution } from "../../src/executions/trigger.js";
import { createLogger } from "../../src/log/logger.js";
import { startService, type RunningService } from "../../src/service/service.js";
import { freshDatabase, type Query } from "../support/db.js";
import { pushImage, pushManifest } from "../support/oci_push.js";
import { registrySkipReason, startRegistry, type TestRegistry } from "../support/registry.js";
import { startFaultProxy, type FaultProxy, type UpstreamResponse } from "../support/registry_fault_proxy.js";
import { waitFor } from "../support/wait_for.js";

const skip = registrySkipReason();
const db = skip ? undefined : await freshDatabase();
const q: Query = (sql, params) => db!.q(sql, params);
let reg: TestRegistry;
let proxy: FaultProxy;
let service: RunningService;
let registryId: number;

before(async () => {
  if (skip) return;
  reg = await startRegistry();
  proxy = await startFaultProxy(reg.url);
  registryId = (await q("insert into ebb.registries (name, base_url) values ('hostile', $1) returning id", [proxy.url]))[0].id;
  const config = loadConfig({ DATABASE_URL: db!.url, EBB_ROLES: "worker", EBB_POOL_SIZE: "6", EBB_WORKER_CONCURRENCY: "2" });
  service = await startService(config, createLogger("silent"));
});
after(async () => {
  await service?.stop("test done");
  await proxy?.stop();
  await reg?.stop();
});

async function sync(): Promise<{ status: string; stale: { repository: string; reason: string }[] }> {
  const id = await triggerExecution(service.ctx, { kind: "sync", targetId: registryId });
  const e = await waitFor(`sync ${id}`, async () => (await q("select * from ebb.executions where id = $1 and status not in ('pending', 'running')", [id]))[0], 90_000, 100);
  const [task] = await q("select details from ebb.tasks where execution_id = $1", [id]);
  return { status: e.status, stale: task?.details?.stale ?? [] };
}

async function repository(name: string): Promise<{ stale: boolean; stale_reason: string | null; tags: string[] } | undefined> {
  const [r] = await q(
    `select r.stale, r.stale_reason, coalesce(array_agg(t.name order by t.name) filter (where t.name is not null), '{}') as tags
       from ebb.repositories r left join ebb.tags t on t.repository_id = r.id
      where r.registry_id = $1 and r.name = $2 group by r.id`, [registryId, name]);
  return r;
}

function json(res: UpstreamResponse, body: unknown): UpstreamResponse {
  const bytes = Buffer.from(JSON.stringify(body));
  return { ...res, headers: { ...res.headers, "content-length": String(bytes.length) }, body: bytes };
}

const HOSTILE_REPOSITORIES = [
  "x'; drop table ebb.tags; --",
  "robert'); delete from ebb.artifacts;--",
  "../../etc/passwd",
  "ok/app/../../../v2/_catalog",
  "ok/%2e%2e/secret",
];
const HOSTILE_TAGS = ["v1'; delete from ebb.tags where ''='", "../../../etc/passwd", "$(reboot)", "a/../../b", "x%00y"];

test("repository and tag names that look like SQL or paths: never requested, never stored; the repository listing them is STALE with the reason; the rest syncs; the tables are intact", { skip }, async () => {
  const plain = await pushImage(reg, "ok/app", { tag: "v1" });
  await pushImage(reg, "ok/tagged", { tag: "v1" });
  const seenBefore = proxy.requests.length;
  proxy.inject((m, p) => m === "GET" && p.startsWith("/v2/_catalog"), {
    kind: "rewrite",
    transform: (res) => json(res, { repositories: [...(JSON.parse(res.body.toString()) as { repositories: string[] }).repositories, ...HOSTILE_REPOSITORIES] }),
  });
  proxy.inject((m, p) => m === "GET" && p.startsWith("/v2/ok/tagged/tags/list"), {
    kind: "rewrite",
    transform: (res) => json(res, { name: "ok/tagged", tags: [...(JSON.parse(res.body.toString()) as { tags: string[] }).tags, ...HOSTILE_TAGS] }),
  });
  let result;
  try {
    result = await sync();
  } finally {
    proxy.clear();
  }
  // the catalog listing worked and every repository was tried; per-repository problems are
  // reported per repository, and a sync that leaves any repository STALE ends in error
  assert.equal(result.status, "error");
  // nothing built from a hostile name went out
  for (const r of proxy.requests.slice(seenBefore)) {
    assert.match(r.path, /^\/v2\/(_catalog|[a-z0-9]+([._-]+[a-z0-9]+)*(\/[a-z0-9]+([._-]+[a-z0-9]+)*)*\/(tags\/list|manifests\/[A-Za-z0-9_][A-Za-z0-9._:-]*|blobs\/sha256:[a-f0-9]{64}))(\?[a-z0-9=&]*)?$/, `request ${r.method} ${r.path}`);
  }
  // nothing stored under a hostile name
  const names = (await q("select name from ebb.repositories where registry_id = $1 order by name", [registryId])).map((r) => r.name);
  assert.deepEqual(names.filter((n) => n.startsWith("ok/")), ["ok/app", "ok/tagged"]);
  assert.equal((await q("select count(*)::int as n from ebb.tags where name !~ '^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$'"))[0].n, 0);
  // each hostile repository name is reported with the reason
  for (const bad of HOSTILE_REPOSITORIES) {
    const entry = result.stale.find((s) => s.repository === bad);
    assert.ok(entry, `${bad} reported`);
    assert.match(entry.reason, /^repository: invalid repository name .*: not read, not stored$/);
  }
  // the repository whose tag list holds hostile tags is STALE (a partial read is no truth)
  const tagged = (await repository("ok/tagged"))!;
  assert.equal(tagged.stale, true);
  assert.match(tagged.stale_reason!, /invalid tag or digest/);
  const app = (await repository("ok/app"))!;
  assert.deepEqual([app.stale, app.tags], [false, ["v1"]], "the other repository synced");
  assert.equal((await q("select count(*)::int as n from ebb.artifacts a join ebb.repositories r on r.id = a.repository_id where r.name = 'ok/app' and a.digest = $1", [plain.digest]))[0].n, 1);
  // the tables are intact and the registry answers normally again: STALE clears
  const again = await sync();
  assert.equal(again.status, "success");
  const healed = (await repository("ok/tagged"))!;
  assert.deepEqual([healed.stale, healed.tags], [false, ["v1"]]);
});

test("a huge tag list (5,000 tags in one page) is read with bounded concurrency; a tag list page over 64 MiB is refused: STALE, nothing changed", { skip, timeout: 180_000 }, async () => {
  const img = await pushImage(reg, "big/app", { tag: "v1" });
  await pushManifest(reg, "big/app", "v2", img.bytes, img.mediaType);
  const extra = Array.from({ length: 5000 }, (_, i) => `gen-${i}`); // listed, but HEAD answers 404: deleted meanwhile
  proxy.inject((m, p) => m === "GET" && p.startsWith("/v2/big/app/tags/list"), {
    kind: "rewrite",
    transform: (res) => json(res, { name: "big/app", tags: [...(JSON.parse(res.body.toString()) as { tags: string[] }).tags, ...extra] }),
  });
  // a registry's answer must never become an uncaught exception (in ebb it stops the process)
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  process.on("uncaughtException", onUncaught);
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, proxy.inFlight())), 5);
  const before = proxy.requests.length;
  try {
    const r = await sync();
    assert.equal(r.status, "success");
  } finally {
    clearInterval(sampler);
    proxy.clear();
  }
  const heads = proxy.requests.slice(before).filter((r) => r.method === "HEAD" && r.path.startsWith("/v2/big/app/manifests/gen-")).length;
  assert.equal(heads, 5000, "every listed tag was checked");
  assert.ok(peak <= 8 + 4, `registry requests in flight at once stay bounded (peak ${peak})`);
  const big = (await repository("big/app"))!;
  assert.deepEqual([big.stale, big.tags], [false, ["v1", "v2"]], "only the tags the registry really has are stored");

  // a single page over the 64 MiB limit: refused, the repository STALE, its rows unchanged
  const filler = "t".repeat(100);
  proxy.inject((m, p) => m === "GET" && p.startsWith("/v2/big/app/tags/list"), {
    kind: "rewrite",
    transform: (res) => {
      const body = Buffer.from(`{"name":"big/app","tags":[${Array.from({ length: 700_000 }, (_, i) => `"${filler}${i}"`).join(",")}]}`);
      return { ...res, headers: { ...res.headers, "content-length": String(body.length) }, body };
    },
  });
  try {
    await sync();
  } finally {
    proxy.clear();
  }
  const refused = (await repository("big/app"))!;
  assert.equal(refused.stale, true);
  assert.match(refused.stale_reason!, /exceeds the limit of 67108864 bytes/);
  assert.deepEqual(refused.tags, ["v1", "v2"], "nothing removed on a refused read");
  await new Promise((r) => setTimeout(r, 500));
  process.off("uncaughtException", onUncaught);
  assert.deepEqual(uncaught.map(String), [], "no uncaught exception from the abandoned response");
  await sync();
  assert.equal((await repository("big/app"))!.stale, false);
});

test("malformed tag list pages and bad digests from the registry: the repository is STALE with the reason, nothing stored or removed", { skip }, async () => {
  const img = await pushImage(reg, "mal/app", { tag: "v1" });
  assert.equal((await sync()).status, "success");
  await pushImage(reg, "mal/app", { tag: "v2" });
  const cases: { what: string; match: (m: string, p: string) => boolean; transform: (res: UpstreamResponse) => UpstreamResponse; reason: RegExp }[] = [
    { what: "not JSON", match: (m, p) => m === "GET" && p.startsWith("/v2/mal/app/tags/list"), transform: (res) => ({ ...res, body: Buffer.from("<html>oops</html>") }), reason: /malformed JSON page/ },
    { what: "tags not strings", match: (m, p) => m === "GET" && p.startsWith("/v2/mal/app/tags/list"), transform: (res) => json(res, { name: "mal/app", tags: ["v1", 2, { x: 1 }] }), reason: /tags is not an array of strings/ },
    { what: "tags not an array", match: (m, p) => m === "GET" && p.startsWith("/v2/mal/app/tags/list"), transform: (res) => json(res, { name: "mal/app", tags: "v1,v2" }), reason: /tags is not an array of strings/ },
    { what: "a path as the digest", match: (m, p) => m === "HEAD" && p === "/v2/mal/app/manifests/v2", transform: (res) => ({ ...res, headers: { ...res.headers, "docker-content-digest": "sha256:../../../etc/passwd" } }), reason: /no valid Docker-Content-Digest header/ },
    { what: "an unknown digest algorithm", match: (m, p) => m === "HEAD" && p === "/v2/mal/app/manifests/v2", transform: (res) => ({ ...res, headers: { ...res.headers, "docker-content-digest": "md5:d41d8cd98f00b204e9800998ecf8427e" } }), reason: /no valid Docker-Content-Digest header/ },
    { what: "SQL as the digest", match: (m, p) => m === "HEAD" && p === "/v2/mal/app/manifests/v2", transform: (res) => ({ ...res, headers: { ...res.headers, "docker-content-digest": "sha256:'; drop table ebb.artifacts; --" } }), reason: /no valid Docker-Content-Digest header/ },
  ];
  for (const c of cases) {
    proxy.inject(c.match, { kind: "rewrite", transform: c.transform });
    try {
      await sync();
    } finally {
      proxy.clear();
    }
    const r = (await repository("mal/app"))!;
    assert.equal(r.stale, true, `${c.what}: STALE`);
    assert.match(r.stale_reason!, c.reason, c.what);
    assert.deepEqual(r.tags, ["v1"], `${c.what}: nothing stored, nothing removed`);
    const digests = (await q("select a.digest from ebb.artifacts a join ebb.repositories r on r.id = a.repository_id where r.name = 'mal/app'")).map((x) => x.digest);
    assert.deepEqual(digests, [img.digest], `${c.what}: the artifacts are unchanged`);
  }
  await sync();
  const healed = (await repository("mal/app"))!;
  assert.deepEqual([healed.stale, healed.tags], [false, ["v1", "v2"]]);
});
