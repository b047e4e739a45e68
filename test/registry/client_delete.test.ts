import assert from "node:assert/strict";
import test from "node:test";
import { RegistryClient } from "../../src/registry/client.js";
import { pullManifest, pushImage, pushIndex, pushReferrer, registryTags } from "../support/oci_push.js";
import { registrySkipReason, startRegistry } from "../support/registry.js";

const skip = registrySkipReason();

test("delete removes exactly one manifest; everything else survives; a second delete is already_deleted", { skip }, async (t) => {
  const reg = await startRegistry(t);
  const client = new RegistryClient({ baseUrl: reg.url });
  t.after(() => client.close());

  const doomed = await pushImage(reg, "app", { tag: "old" });
  // a second tag on the doomed digest goes with it (tags point at manifests)
  await fetch(`${reg.url}/v2/app/manifests/old-alias`, {
    method: "PUT", headers: { "content-type": doomed.mediaType }, body: new Uint8Array(doomed.bytes),
  }).then((r) => r.arrayBuffer());
  const keep = await pushImage(reg, "app", { tag: "new" });
  const keepIndex = await pushIndex(reg, "app", { tag: "multi" });
  const keepSig = await pushReferrer(reg, "app", keep);
  const sameDigestOtherRepo = await fetch(`${reg.url}/v2/other/manifests/old`, {
    method: "PUT", headers: { "content-type": doomed.mediaType }, body: new Uint8Array(doomed.bytes),
  });
  assert.equal(sameDigestOtherRepo.status, 400, "cross-repo blobs are not mounted, so this PUT is refused");
  await sameDigestOtherRepo.arrayBuffer();
  const otherRepo = await pushImage(reg, "other", { tag: "old" });

  assert.deepEqual(await registryTags(reg, "app"), ["multi", "new", "old", "old-alias"]);
  assert.equal(await client.deleteManifest("app", doomed.digest), "deleted");

  // the registry's own API: the manifest is gone, by digest and by both of its tags
  assert.equal((await pullManifest(reg, "app", doomed.digest)).status, 404);
  assert.equal((await pullManifest(reg, "app", "old")).status, 404);
  assert.equal((await pullManifest(reg, "app", "old-alias")).status, 404);
  assert.deepEqual(await registryTags(reg, "app"), ["multi", "new"]);
  // what must survive does
  for (const d of [keep.digest, keepIndex.digest, ...keepIndex.children.map((c) => c.digest), keepSig.digest]) {
    assert.equal((await pullManifest(reg, "app", d)).status, 200, `${d} survives`);
  }
  assert.equal((await pullManifest(reg, "app", "new")).digest, keep.digest);
  assert.equal((await pullManifest(reg, "other", "old")).digest, otherRepo.digest, "same tag in another repository survives");

  // again: someone else (or we) already deleted it
  assert.equal(await client.deleteManifest("app", doomed.digest), "already_deleted");
  assert.equal(await client.deleteManifest("never/existed", doomed.digest), "already_deleted");
  assert.deepEqual(await registryTags(reg, "app"), ["multi", "new"]);
});
