import assert from "node:assert/strict";
import test from "node:test";
import { RegistryClient } from "../../src/registry/client.js";
import {
  DOCKER_MANIFEST_V2, DOCKER_MANIFEST_LIST_V2, OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST,
} from "../../src/registry/media_types.js";
import { pushImage, pushIndex, pushReferrer } from "../support/oci_push.js";
import { registrySkipReason, startRegistry } from "../support/registry.js";

const skip = registrySkipReason();

test("manifests of every kind: image, docker v2, index children, subject, config created", { skip }, async (t) => {
  const reg = await startRegistry(t);
  const client = new RegistryClient({ baseUrl: reg.url });
  t.after(() => client.close());

  const oci = await pushImage(reg, "kinds", { tag: "oci", created: "2024-03-01T12:34:56.123456789Z" });
  const docker = await pushImage(reg, "kinds", { tag: "docker", format: "docker", created: "2023-01-02T03:04:05Z" });
  const noCreated = await pushImage(reg, "kinds", { tag: "nocreated", created: null });
  const index = await pushIndex(reg, "kinds", { tag: "multi" });
  const list = await pushIndex(reg, "kinds", { tag: "dockerlist", format: "docker" });
  const sig = await pushReferrer(reg, "kinds", oci, { artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json" });

  // OCI image by tag
  const m1 = await client.getManifest("kinds", "oci");
  assert.ok(m1);
  assert.equal(m1.digest, oci.digest);
  assert.equal(m1.mediaType, OCI_IMAGE_MANIFEST);
  assert.equal(m1.size, oci.size);
  assert.equal(m1.manifest.kind, "image");
  assert.equal(m1.manifest.kind === "image" && m1.manifest.config.digest, oci.config.digest);
  assert.equal(m1.manifest.subject, undefined);
  assert.equal((await client.getImageCreated("kinds", m1.manifest))?.toISOString(), "2024-03-01T12:34:56.123Z");

  // Docker v2 schema 2 by digest
  const m2 = await client.getManifest("kinds", docker.digest);
  assert.ok(m2);
  assert.equal(m2.mediaType, DOCKER_MANIFEST_V2);
  assert.equal((await client.getImageCreated("kinds", m2.manifest))?.toISOString(), "2023-01-02T03:04:05.000Z");

  // config without created
  const m3 = await client.getManifest("kinds", "nocreated");
  assert.ok(m3);
  assert.equal(await client.getImageCreated("kinds", m3.manifest), null);
  assert.equal(m3.digest, noCreated.digest);

  // OCI index: children with platforms
  const m4 = await client.getManifest("kinds", "multi");
  assert.ok(m4 && m4.manifest.kind === "index");
  assert.equal(m4.mediaType, OCI_IMAGE_INDEX);
  assert.equal(m4.digest, index.digest);
  assert.deepEqual(
    m4.manifest.manifests.map((c) => ({ digest: c.digest, arch: c.platform?.architecture, variant: c.platform?.variant })),
    index.children.map((c) => ({ digest: c.digest, arch: c.platform?.architecture, variant: c.platform?.variant })),
  );
  assert.deepEqual(m4.manifest.manifests.map((c) => c.platform?.architecture), ["amd64", "arm64"]);
  assert.equal(await client.getImageCreated("kinds", m4.manifest), null, "an index has no config");
  // the children themselves are fetchable by digest
  const child = await client.getManifest("kinds", index.children[1]!.digest);
  assert.equal(child?.manifest.kind, "image");

  // Docker manifest list
  const m5 = await client.getManifest("kinds", "dockerlist");
  assert.ok(m5 && m5.manifest.kind === "index");
  assert.equal(m5.mediaType, DOCKER_MANIFEST_LIST_V2);
  assert.deepEqual(m5.manifest.manifests.map((c) => c.digest), list.children.map((c) => c.digest));

  // referrer with subject
  const m6 = await client.getManifest("kinds", sig.digest);
  assert.ok(m6 && m6.manifest.kind === "image");
  assert.equal(m6.manifest.subject?.digest, oci.digest);
  assert.equal(m6.manifest.artifactType, "application/vnd.dev.cosign.artifact.sig.v1+json");
  assert.equal(await client.getImageCreated("kinds", m6.manifest), null, "artifact config is not an image config");

  // HEAD
  const head = await client.headManifest("kinds", "multi");
  assert.deepEqual(head, { digest: index.digest, mediaType: OCI_IMAGE_INDEX, size: index.size });
  assert.equal(await client.headManifest("kinds", "missing"), null);
  assert.equal(await client.getManifest("kinds", "missing"), null);
  assert.equal(await client.getManifest("kinds", `sha256:${"0".repeat(64)}`), null);
});
