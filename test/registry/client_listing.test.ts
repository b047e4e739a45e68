import assert from "node:assert/strict";
import test from "node:test";
import { RegistryClient } from "../../src/registry/client.js";
import { pushImage } from "../support/oci_push.js";
import { registrySkipReason, startRegistry } from "../support/registry.js";
import { startFaultProxy } from "../support/registry_fault_proxy.js";

const skip = registrySkipReason();

test("catalog pagination with n=2 follows every Link page and returns every repository", { skip }, async (t) => {
  const reg = await startRegistry(t);
  const repos = ["alpha/app", "beta", "gamma/x/y", "delta", "epsilon"];
  for (const repo of repos) await pushImage(reg, repo, { tag: "v1" });
  const proxy = await startFaultProxy(reg.url); // counts the pages the registry really served
  t.after(() => proxy.stop());
  const client = new RegistryClient({ baseUrl: proxy.url });
  t.after(() => client.close());

  const listed = await client.listRepositories({ pageSize: 2 });
  assert.deepEqual([...listed].sort(), [...repos].sort());
  const pages = proxy.requests.filter((r) => r.path.startsWith("/v2/_catalog"));
  assert.equal(pages.length, 3, "5 repositories at n=2 are 3 pages");
  assert.ok(pages.every((p) => /[?&]n=2(&|$)/.test(p.path)), "every page keeps n=2");
});

test("tags/list returns every tag; unknown repository is null", { skip }, async (t) => {
  const reg = await startRegistry(t);
  const tags = ["v1", "v2", "v3", "latest", "1.0.0"];
  for (const tag of tags) await pushImage(reg, "app", { tag });
  const client = new RegistryClient({ baseUrl: reg.url });
  t.after(() => client.close());
  // distribution 2.8 ignores n on tags/list (no Link); the same pagination code is exercised
  // by the catalog test above and by the Link tests in client_faults.test.ts.
  const listed = await client.listTags("app", { pageSize: 2 });
  assert.deepEqual(listed?.sort(), [...tags].sort());
  assert.equal(await client.listTags("no/such/repo"), null);
});

test("bad names are refused before any request, naming the field", async () => {
  const client = new RegistryClient({ baseUrl: "http://127.0.0.1:9" });
  await assert.rejects(client.listTags("../etc"), /repository: invalid repository name/);
  await assert.rejects(client.getManifest("app", "bad tag!"), /reference: invalid tag or digest/);
  await assert.rejects(client.deleteManifest("app", "latest"), /digest: invalid digest "latest"/);
  assert.throws(() => new RegistryClient({ baseUrl: "http://user:pw@127.0.0.1:9" }), /baseUrl: must not contain credentials/);
  assert.throws(() => new RegistryClient({ baseUrl: "ftp://x" }), /baseUrl: must be http\(s\)/);
  assert.throws(() => new RegistryClient({ baseUrl: "http://x", concurrency: 0 }), /concurrency: must be a positive integer/);
  await client.close();
});
