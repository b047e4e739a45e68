// Registry credentials come from where credentials_ref points (env or file), never from the
// row itself, and no error carries the secret.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createRegistryClient, RegistryConfigError, resolveCredentials } from "../../src/registry/client_factory.js";
import { pullManifest, pushImage } from "../support/oci_push.js";
import { registrySkipReason, startRegistry } from "../support/registry.js";

const SECRET = "s3cr3t:with:colons";

test("credentials_ref: env:NAME and file:/path hold user:password; errors name the field and never the secret", () => {
  const rec = { name: "r", auth_kind: "basic" as const };
  assert.deepEqual(resolveCredentials({ ...rec, credentials_ref: "env:REG" }, { REG: `alice:${SECRET}` }),
    { kind: "basic", username: "alice", password: SECRET });
  const dir = mkdtempSync(join(tmpdir(), "ebb-cred-"));
  writeFileSync(join(dir, "cred"), `bob:${SECRET}\n`);
  assert.deepEqual(resolveCredentials({ ...rec, credentials_ref: `file:${join(dir, "cred")}` }),
    { kind: "basic", username: "bob", password: SECRET });
  assert.deepEqual(resolveCredentials({ name: "r", auth_kind: "anonymous", credentials_ref: null }), { kind: "anonymous" });
  const refusals: [string | null, NodeJS.ProcessEnv, RegExp][] = [
    [null, {}, /^registries\.credentials_ref: registry r has auth_kind basic but no credentials_ref/],
    ["env:MISSING", {}, /^registries\.credentials_ref: environment variable MISSING \(registry r\) is not set$/],
    ["env:REG", { REG: SECRET.replace(/:/g, "") }, /^registries\.credentials_ref: environment variable REG must hold "username:password"$/],
    ["vault:x", {}, /^registries\.credentials_ref: must be env:NAME or file:\/path/],
    [`file:${join(dir, "nope")}`, {}, /^registries\.credentials_ref: cannot read .*nope \(registry r\): ENOENT$/],
  ];
  for (const [ref, env, message] of refusals) {
    assert.throws(() => resolveCredentials({ ...rec, credentials_ref: ref }, env), (err: Error) => {
      assert.ok(err instanceof RegistryConfigError);
      assert.match(err.message, message);
      assert.ok(!err.message.includes("s3cr3t"), "no secret in the message");
      return true;
    });
  }
});

test("a client built from a registries row authenticates with the referenced credentials", { skip: registrySkipReason("htpasswd") }, async (t) => {
  const reg = await startRegistry(t, { auth: { kind: "htpasswd", username: "ebb", password: "pw-123" } });
  const img = await pushImage(reg, "team/app", { tag: "v1" });
  const row = { id: 1, name: "auth", base_url: reg.url, auth_kind: "basic" as const, credentials_ref: "env:EBB_TEST_REG" };
  const client = createRegistryClient(row, { env: { EBB_TEST_REG: "ebb:pw-123" } });
  t.after(() => client.close());
  assert.deepEqual(await client.listTags("team/app"), ["v1"]);
  assert.equal(await client.deleteManifest("team/app", img.digest), "deleted");
  assert.equal((await pullManifest(reg, "team/app", img.digest)).status, 404);
  const anonymous = createRegistryClient({ ...row, auth_kind: "anonymous", credentials_ref: null });
  t.after(() => anonymous.close());
  await assert.rejects(anonymous.listTags("team/app"), /401|unauthori[sz]ed|auth/i);
});
