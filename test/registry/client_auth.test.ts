import assert from "node:assert/strict";
import test from "node:test";
import { inspect } from "node:util";
import { RegistryClient } from "../../src/registry/client.js";
import { RegistryAuthError } from "../../src/registry/errors.js";
import type { RegistryLogger } from "../../src/registry/transport.js";
import { pullManifest, pushImage } from "../support/oci_push.js";
import { registrySkipReason, startRegistry } from "../support/registry.js";
import { startFaultProxy } from "../support/registry_fault_proxy.js";

const USER = "ebb-robot";
const SECRET = "s3cr3t-Pa55word-never-logged";

function capturingLogger(): RegistryLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    warn: (obj, msg) => lines.push(`${msg} ${JSON.stringify(obj)}`),
    debug: (obj, msg) => lines.push(`${msg} ${JSON.stringify(obj)}`),
  };
}

function assertNoSecret(text: string, where: string): void {
  const basic = Buffer.from(`${USER}:${SECRET}`).toString("base64");
  assert.ok(!text.includes(SECRET), `${where} contains the password: ${text}`);
  assert.ok(!text.includes(basic), `${where} contains the basic auth header: ${text}`);
}

async function errorOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  assert.fail("expected a rejection");
}

test("htpasswd basic auth: 401 without credentials, works with them, secret never in errors or logs", { skip: registrySkipReason("htpasswd") }, async (t) => {
  const reg = await startRegistry(t, { auth: { kind: "htpasswd", username: USER, password: SECRET } });
  const image = await pushImage(reg, "secure/app", { tag: "v1" });
  const proxy = await startFaultProxy(reg.url);
  t.after(() => proxy.stop());

  const anonymous = new RegistryClient({ baseUrl: proxy.url, retry: { attempts: 1 } });
  t.after(() => anonymous.close());
  const denied = await errorOf(anonymous.getManifest("secure/app", "v1"));
  assert.ok(denied instanceof RegistryAuthError);
  assert.equal(denied.status, 401);
  assert.match(denied.message, /get manifest secure\/app:v1: HTTP 401 .*anonymous credentials/);

  const logger = capturingLogger();
  const client = new RegistryClient({
    baseUrl: proxy.url, credentials: { kind: "basic", username: USER, password: SECRET }, logger,
    retry: { baseDelayMs: 5 },
  });
  t.after(() => client.close());
  // one injected 500 makes the client log a retry: that log line must not leak the secret
  proxy.inject((m, p) => m === "GET" && p.includes("/manifests/"), { kind: "status", status: 500 }, 1);
  const got = await client.getManifest("secure/app", "v1");
  assert.equal(got?.digest, image.digest);
  assert.deepEqual(await client.listRepositories(), ["secure/app"]);
  assert.equal(await client.deleteManifest("secure/app", image.digest), "deleted");
  assert.equal((await pullManifest(reg, "secure/app", image.digest)).status, 404);
  assert.ok(logger.lines.length >= 1, "the retry was logged");

  const wrong = new RegistryClient({
    baseUrl: proxy.url, credentials: { kind: "basic", username: USER, password: `${SECRET}-wrong` }, logger, retry: { attempts: 1 },
  });
  t.after(() => wrong.close());
  const refused = await errorOf(wrong.listTags("secure/app"));
  assert.ok(refused instanceof RegistryAuthError);
  assert.match(refused.message, /HTTP 401 .*basic credentials/);

  // a network failure message, too
  await proxy.stop();
  const down = await errorOf(client.getManifest("secure/app", "v1"));

  for (const e of [denied, refused, down]) {
    assertNoSecret(`${e.message} ${e.stack ?? ""} ${inspect(e)}`, "error");
  }
  assertNoSecret(logger.lines.join("\n"), "logs");
  assertNoSecret(inspect(client, { depth: 10, showHidden: true }), "inspect(client)");
  assertNoSecret(JSON.stringify(client), "JSON of client");
});

test("token auth: bearer challenge, token fetched with credentials, cached per scope", { skip: registrySkipReason("token") }, async (t) => {
  const reg = await startRegistry(t, { auth: { kind: "token", username: USER, password: SECRET } });
  const a = await pushImage(reg, "team/a", { tag: "v1" });
  const b = await pushImage(reg, "team/b", { tag: "v1" });
  const tokenServer = reg.tokenServer!;

  const logger = capturingLogger();
  const client = new RegistryClient({ baseUrl: reg.url, credentials: { kind: "basic", username: USER, password: SECRET }, logger });
  t.after(() => client.close());

  assert.deepEqual((await client.listRepositories()).sort(), ["team/a", "team/b"]);
  const before = tokenServer.requests();
  assert.equal((await client.getManifest("team/a", "v1"))?.digest, a.digest);
  assert.equal(tokenServer.requests(), before + 1, "one token for repository:team/a:pull");
  for (let i = 0; i < 3; i++) await client.getManifest("team/a", "v1");
  await client.headManifest("team/a", "v1");
  assert.equal(tokenServer.requests(), before + 1, "the pull token is reused");
  assert.equal((await client.getManifest("team/b", "v1"))?.digest, b.digest);
  assert.equal(tokenServer.requests(), before + 2, "another repository, another scope, another token");
  // concurrent first requests for one scope share one token request
  const c = await pushImage(reg, "team/c", { tag: "v1" });
  await Promise.all(Array.from({ length: 5 }, () => client.getManifest("team/c", "v1")));
  assert.equal(tokenServer.requests(), before + 3);

  assert.equal(await client.deleteManifest("team/c", c.digest), "deleted");
  assert.equal((await pullManifest(reg, "team/c", c.digest)).status, 404);
  assert.equal((await pullManifest(reg, "team/a", "v1")).status, 200, "other repositories untouched");

  // anonymous: the token service grants no access -> 401
  const anonymous = new RegistryClient({ baseUrl: reg.url });
  t.after(() => anonymous.close());
  const denied = await errorOf(anonymous.getManifest("team/a", "v1"));
  assert.ok(denied instanceof RegistryAuthError);
  assert.equal(denied.status, 401);

  // wrong password: the token service refuses, the error says so without the secret
  const wrong = new RegistryClient({ baseUrl: reg.url, credentials: { kind: "basic", username: USER, password: "nope" } });
  t.after(() => wrong.close());
  const refused = await errorOf(wrong.getManifest("team/a", "v1"));
  assert.ok(refused instanceof RegistryAuthError);
  assert.match(refused.message, /token service .* refused the basic credentials \(HTTP 401\)/);

  for (const e of [denied, refused]) assertNoSecret(`${e.message} ${inspect(e)}`, "error");
  assertNoSecret(logger.lines.join("\n"), "logs");
  assertNoSecret(inspect(client, { depth: 10, showHidden: true }), "inspect(client)");
});
