import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import test from "node:test";
import { RegistryClient } from "../../src/registry/client.js";
import { RegistryHttpError, RegistryNetworkError, RegistryProtocolError } from "../../src/registry/errors.js";
import { pushImage } from "../support/oci_push.js";
import { registrySkipReason, startRegistry, type TestRegistry } from "../support/registry.js";
import { startFaultProxy, type FaultProxy, type UpstreamResponse } from "../support/registry_fault_proxy.js";

const skip = registrySkipReason();

interface Setup {
  reg: TestRegistry;
  proxy: FaultProxy;
  delays: number[];
  client: RegistryClient;
}

async function setup(t: { after(fn: () => Promise<void>): void }, opts: { attempts?: number; timeoutMs?: number } = {}): Promise<Setup> {
  const reg = await startRegistry(t);
  const proxy = await startFaultProxy(reg.url);
  t.after(() => proxy.stop());
  const delays: number[] = [];
  const client = new RegistryClient({
    baseUrl: proxy.url,
    retry: { attempts: opts.attempts ?? 4, baseDelayMs: 100, maxDelayMs: 1000 },
    timeoutMs: opts.timeoutMs ?? 5000,
    random: () => 0.5,
    sleep: async (ms) => {
      delays.push(ms);
    },
  });
  t.after(() => client.close());
  return { reg, proxy, delays, client };
}

const isManifestGet = (m: string, p: string) => m === "GET" && p.includes("/manifests/");
const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

test("5xx and 429 are retried with growing backoff and Retry-After; then the real answer is used", { skip }, async (t) => {
  const { reg, proxy, delays, client } = await setup(t);
  const image = await pushImage(reg, "app", { tag: "v1" });

  proxy.inject(isManifestGet, { kind: "status", status: 500 }, 1);
  proxy.inject(isManifestGet, { kind: "status", status: 503 }, 1);
  proxy.inject(isManifestGet, { kind: "status", status: 429, headers: { "retry-after": "2" } }, 1);
  const got = await client.getManifest("app", "v1");
  assert.equal(got?.digest, image.digest);
  const gets = proxy.requests.filter((r) => isManifestGet(r.method, r.path));
  assert.deepEqual(gets.map((r) => r.faulted), ["status", "status", "status", undefined]);
  // equal jitter at random()=0.5: 3/4 of 100*2^(n-1); Retry-After: 2 s honoured
  assert.deepEqual(delays, [75, 150, 2000]);
});

test("a registry that keeps failing: error after the bounded attempts, status kept", { skip }, async (t) => {
  const { reg, proxy, client } = await setup(t, { attempts: 3 });
  await pushImage(reg, "app", { tag: "v1" });
  proxy.inject(isManifestGet, { kind: "status", status: 502 });
  await assert.rejects(client.getManifest("app", "v1"), (err: unknown) => {
    assert.ok(err instanceof RegistryHttpError);
    assert.equal(err.status, 502);
    assert.equal(err.retryable, true);
    assert.match(err.message, /get manifest app:v1: HTTP 502 UNKNOWN from http:\/\/127\.0\.0\.1:\d+ after 3 attempts/);
    return true;
  });
  assert.equal(proxy.requests.filter((r) => isManifestGet(r.method, r.path)).length, 3);
  // 4xx other than auth are not retried
  proxy.clear();
  proxy.inject(isManifestGet, { kind: "status", status: 400 });
  const before = proxy.requests.length;
  await assert.rejects(client.getManifest("app", "v1"), /unexpected HTTP 400/);
  assert.equal(proxy.requests.length, before + 1);
});

test("dropped connections are retried; a hanging registry times out", { skip }, async (t) => {
  const { reg, proxy, client } = await setup(t, { attempts: 2, timeoutMs: 400 });
  const image = await pushImage(reg, "app", { tag: "v1" });
  proxy.inject(isManifestGet, { kind: "reset" }, 1);
  assert.equal((await client.getManifest("app", "v1"))?.digest, image.digest);

  proxy.inject(isManifestGet, { kind: "hang" });
  const started = Date.now();
  await assert.rejects(client.getManifest("app", "v1"), (err: unknown) => {
    assert.ok(err instanceof RegistryNetworkError);
    assert.match(err.message, /timed out after 400 ms \(after 2 attempts\)/);
    return true;
  });
  assert.ok(Date.now() - started < 5000);
});

function withLink(link: string) {
  return (res: UpstreamResponse): UpstreamResponse => ({ ...res, headers: { ...res.headers, link } });
}

test("a pagination Link to another host, scheme or port is refused, not followed", { skip }, async (t) => {
  const { reg, proxy, client } = await setup(t);
  for (const repo of ["a", "b", "c"]) await pushImage(reg, repo, { tag: "v1" });
  const port = new URL(proxy.url).port;
  const foreign = [
    "http://evil.example/v2/_catalog?last=b&n=2",
    `https://127.0.0.1:${port}/v2/_catalog?last=b&n=2`,
    `http://127.0.0.1:${Number(port) + 1}/v2/_catalog?last=b&n=2`,
    "//evil.example/v2/_catalog?last=b&n=2",
  ];
  for (const target of foreign) {
    proxy.clear();
    proxy.inject((m, p) => p.startsWith("/v2/_catalog"), { kind: "rewrite", transform: withLink(`<${target}>; rel="next"`) }, 1);
    await assert.rejects(client.listRepositories({ pageSize: 2 }), (err: unknown) => {
      assert.ok(err instanceof RegistryProtocolError, String(err));
      assert.match(err.message, /list repositories: refused pagination Link to another origin/);
      return true;
    });
  }
  proxy.clear();
  proxy.inject((m, p) => p.includes("/tags/list"), { kind: "rewrite", transform: withLink('<http://evil.example/v2/a/tags/list?n=2&last=v1>; rel="next"') }, 1);
  await assert.rejects(client.listTags("a"), /list tags of a: refused pagination Link to another origin http:\/\/evil\.example/);
  // a Link looping on itself is caught too
  proxy.clear();
  proxy.inject((m, p) => p.startsWith("/v2/_catalog"), { kind: "rewrite", transform: withLink('</v2/_catalog?n=2>; rel="next"') });
  await assert.rejects(client.listRepositories({ pageSize: 2 }), /pagination does not end/);
});

test("tampered and malformed manifests and blobs are refused with clear errors", { skip }, async (t) => {
  const { reg, proxy, client } = await setup(t);
  const image = await pushImage(reg, "app", { tag: "v1" });
  const manifestOf = (m: string, p: string) => isManifestGet(m, p);

  // one byte changed, registry's Docker-Content-Digest kept
  proxy.inject(manifestOf, {
    kind: "rewrite",
    transform: (res) => ({ ...res, body: Buffer.from(res.body.toString().replace('"schemaVersion":2', '"schemaVersion": 2')) }),
  }, 1);
  await assert.rejects(client.getManifest("app", "v1"), /get manifest app:v1: digest mismatch: content hashes to sha256:[a-f0-9]{64}, expected sha256:/);

  // by digest, header stripped: the digest reference itself is checked
  const stripAndChange = (res: UpstreamResponse): UpstreamResponse => {
    const headers = { ...res.headers };
    delete headers["docker-content-digest"];
    return { ...res, headers, body: Buffer.concat([res.body, Buffer.from(" ")]) };
  };
  proxy.inject(manifestOf, { kind: "rewrite", transform: stripAndChange }, 1);
  await assert.rejects(client.getManifest("app", image.digest), new RegExp(`get manifest app@${image.digest}: digest mismatch`));

  // not JSON, with a matching digest header (a registry that hashes garbage)
  const garbage = (body: Buffer) => (res: UpstreamResponse): UpstreamResponse =>
    ({ ...res, headers: { ...res.headers, "docker-content-digest": sha256(body) }, body });
  proxy.inject(manifestOf, { kind: "rewrite", transform: garbage(Buffer.from("{not json")) }, 1);
  await assert.rejects(client.getManifest("app", "v1"), /get manifest app:v1: malformed manifest: not JSON/);

  // JSON, but the config has no digest
  const broken = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { mediaType: "x", size: 2 }, layers: [],
  }));
  proxy.inject(manifestOf, { kind: "rewrite", transform: garbage(broken) }, 1);
  await assert.rejects(client.getManifest("app", "v1"), /get manifest app:v1: malformed image manifest: config\.digest: /);

  // an unsupported media type (schema 1) is named
  const schema1 = Buffer.from(JSON.stringify({ schemaVersion: 1, mediaType: "application/vnd.docker.distribution.manifest.v1+prettyjws" }));
  proxy.inject(manifestOf, { kind: "rewrite", transform: garbage(schema1) }, 1);
  await assert.rejects(client.getManifest("app", "v1"), /unsupported manifest media type "application\/vnd\.docker\.distribution\.manifest\.v1\+prettyjws"/);

  // a tampered config blob
  const fetched = await client.getManifest("app", "v1");
  assert.ok(fetched);
  proxy.inject((m, p) => p.includes("/blobs/"), {
    kind: "rewrite", transform: (res) => ({ ...res, body: Buffer.from(res.body.toString().replace(/"created":"[^"]+"/, '"created":"1999-01-01T00:00:00Z"')) }),
  }, 1);
  await assert.rejects(client.getImageCreated("app", fetched.manifest), /get blob app@sha256:[a-f0-9]{64}: digest mismatch/);
  assert.ok(await client.getImageCreated("app", fetched.manifest), "untampered it works");
});
