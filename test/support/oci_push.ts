/**
 * Push images to a real registry over the Distribution HTTP API only (no docker CLI):
 * blobs (monolithic POST + PUT), image configs with a `created` time, OCI and Docker v2
 * schema2 manifests, multi-arch indexes, and referrer artifacts with `subject`.
 * This is test setup: it deliberately does not use src/registry, so a bug there cannot hide
 * behind the same bug here.
 */
import { createHash } from "node:crypto";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
export const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";
export const OCI_EMPTY = "application/vnd.oci.empty.v1+json";
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
export const DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
export const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
export const DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip";

export interface RegistryTarget {
  url: string;
  adminAuthorization(repositories?: string[]): string | undefined;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  artifactType?: string;
}

export interface PushedManifest extends Descriptor {
  bytes: Buffer;
}

export interface PushedImage extends PushedManifest {
  config: Descriptor;
  created: string | undefined;
  layers: Descriptor[];
}

export interface PushedIndex extends PushedManifest {
  children: PushedImage[];
}

export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function headers(reg: RegistryTarget, repo: string, extra: Record<string, string> = {}): Record<string, string> {
  const auth = reg.adminAuthorization([repo]);
  return auth === undefined ? extra : { ...extra, authorization: auth };
}

async function expectStatus(res: Response, ok: number[], what: string): Promise<void> {
  if (!ok.includes(res.status)) {
    const body = await res.text().catch(() => "");
    throw new Error(`${what}: HTTP ${res.status} ${body.slice(0, 500)}`);
  }
}

export async function pushBlob(reg: RegistryTarget, repo: string, bytes: Uint8Array, mediaType: string): Promise<Descriptor> {
  const digest = sha256(bytes);
  const start = await fetch(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: "POST", headers: headers(reg, repo) });
  await expectStatus(start, [202], `start upload to ${repo}`);
  await start.arrayBuffer();
  const location = new URL(start.headers.get("location") ?? "", reg.url);
  location.searchParams.set("digest", digest);
  const put = await fetch(location, {
    method: "PUT",
    headers: headers(reg, repo, { "content-type": "application/octet-stream" }),
    body: Buffer.from(bytes),
  });
  await expectStatus(put, [201], `finish upload of ${digest} to ${repo}`);
  await put.arrayBuffer();
  return { mediaType, digest, size: bytes.byteLength };
}

/** PUT a manifest under a tag or its digest. Body objects are serialised as given. */
export async function pushManifest(
  reg: RegistryTarget, repo: string, reference: string | undefined, body: object | Uint8Array, mediaType: string,
): Promise<PushedManifest> {
  const bytes = body instanceof Uint8Array ? Buffer.from(body) : Buffer.from(JSON.stringify(body));
  const digest = sha256(bytes);
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${reference ?? digest}`, {
    method: "PUT",
    headers: headers(reg, repo, { "content-type": mediaType }),
    body: bytes,
  });
  await expectStatus(res, [201], `put manifest ${reference ?? digest} in ${repo}`);
  await res.arrayBuffer();
  const returned = res.headers.get("docker-content-digest");
  if (returned !== null && returned !== digest) throw new Error(`registry digest ${returned} != ${digest}`);
  return { mediaType, digest, size: bytes.byteLength, bytes };
}

export interface ImageOptions {
  tag?: string;
  format?: "oci" | "docker";
  /** RFC 3339 time for the config's `created`; null for a config without it. */
  created?: string | null;
  platform?: Platform;
  /** Makes the image's bytes unique; defaults to a random value. */
  seed?: string;
}

export async function pushImage(reg: RegistryTarget, repo: string, opts: ImageOptions = {}): Promise<PushedImage> {
  const format = opts.format ?? "oci";
  const seed = opts.seed ?? `${Math.random()}-${Date.now()}`;
  const platform = opts.platform ?? { os: "linux", architecture: "amd64" };
  const created = opts.created === null ? undefined : (opts.created ?? new Date().toISOString());
  const layerBytes = Buffer.from(`layer ${repo} ${seed} ${platform.os}/${platform.architecture}`);
  const layer = await pushBlob(reg, repo, layerBytes, format === "oci" ? OCI_LAYER : DOCKER_LAYER);
  const configJson: Record<string, unknown> = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    rootfs: { type: "layers", diff_ids: [sha256(layerBytes)] },
    config: { Labels: { seed } },
  };
  if (created !== undefined) configJson.created = created;
  const config = await pushBlob(reg, repo, Buffer.from(JSON.stringify(configJson)), format === "oci" ? OCI_CONFIG : DOCKER_CONFIG);
  const mediaType = format === "oci" ? OCI_MANIFEST : DOCKER_MANIFEST;
  const manifest = { schemaVersion: 2, mediaType, config, layers: [layer] };
  const pushed = await pushManifest(reg, repo, opts.tag, manifest, mediaType);
  return { ...pushed, config, created, layers: [layer], platform };
}

export interface IndexOptions {
  tag?: string;
  format?: "oci" | "docker";
  platforms?: Platform[];
  created?: string;
  seed?: string;
}

/** A multi-arch index (OCI) or manifest list (Docker) over untagged platform manifests. */
export async function pushIndex(reg: RegistryTarget, repo: string, opts: IndexOptions = {}): Promise<PushedIndex> {
  const format = opts.format ?? "oci";
  const seed = opts.seed ?? `${Math.random()}-${Date.now()}`;
  const platforms = opts.platforms ?? [
    { os: "linux", architecture: "amd64" },
    { os: "linux", architecture: "arm64", variant: "v8" },
  ];
  const children: PushedImage[] = [];
  for (const platform of platforms) {
    children.push(await pushImage(reg, repo, { format, platform, seed, created: opts.created }));
  }
  const mediaType = format === "oci" ? OCI_INDEX : DOCKER_MANIFEST_LIST;
  const index = {
    schemaVersion: 2,
    mediaType,
    manifests: children.map((c) => ({ mediaType: c.mediaType, digest: c.digest, size: c.size, platform: c.platform })),
  };
  const pushed = await pushManifest(reg, repo, opts.tag, index, mediaType);
  return { ...pushed, children };
}

/** An OCI artifact (e.g. a signature or SBOM) whose `subject` is the given manifest. */
export async function pushReferrer(
  reg: RegistryTarget, repo: string, subject: Descriptor,
  opts: { artifactType?: string; tag?: string; payload?: string } = {},
): Promise<PushedManifest> {
  const artifactType = opts.artifactType ?? "application/vnd.example.signature.v1+json";
  const empty = await pushBlob(reg, repo, Buffer.from("{}"), OCI_EMPTY);
  const payload = await pushBlob(reg, repo, Buffer.from(opts.payload ?? `signature of ${subject.digest} ${Math.random()}`), artifactType);
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType,
    config: empty,
    layers: [payload],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: { "org.opencontainers.image.created": new Date().toISOString() },
  };
  const pushed = await pushManifest(reg, repo, opts.tag, manifest, OCI_MANIFEST);
  return { ...pushed, artifactType };
}

export interface PulledManifest {
  status: number;
  digest: string | null;
  contentType: string | null;
  bytes: Buffer;
}

const ACCEPT_ALL = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST].join(", ");

/** GET a manifest with the registry's own API (a "pull"). status 404 means it is gone. */
export async function pullManifest(reg: RegistryTarget, repo: string, reference: string): Promise<PulledManifest> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${reference}`, {
    headers: headers(reg, repo, { accept: ACCEPT_ALL }),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  return { status: res.status, digest: res.headers.get("docker-content-digest"), contentType: res.headers.get("content-type"), bytes };
}

/** The registry's own tag list (one unpaginated request); [] when the repository is unknown. */
export async function registryTags(reg: RegistryTarget, repo: string): Promise<string[]> {
  const res = await fetch(`${reg.url}/v2/${repo}/tags/list`, { headers: headers(reg, repo) });
  if (res.status === 404) {
    await res.arrayBuffer();
    return [];
  }
  await expectStatus(res, [200], `tags of ${repo}`);
  const body = (await res.json()) as { tags: string[] | null };
  return (body.tags ?? []).sort();
}
