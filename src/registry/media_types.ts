/** Manifest and config media types ebb understands (OCI image spec 1.1, Docker v2 schema 2). */

export const OCI_IMAGE_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_IMAGE_INDEX = "application/vnd.oci.image.index.v1+json";
export const DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json";
export const DOCKER_MANIFEST_LIST_V2 = "application/vnd.docker.distribution.manifest.list.v2+json";

export const OCI_IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json";
export const DOCKER_IMAGE_CONFIG = "application/vnd.docker.container.image.v1+json";

export type ManifestKind = "image" | "index";

const KINDS: ReadonlyMap<string, ManifestKind> = new Map([
  [OCI_IMAGE_MANIFEST, "image"],
  [DOCKER_MANIFEST_V2, "image"],
  [OCI_IMAGE_INDEX, "index"],
  [DOCKER_MANIFEST_LIST_V2, "index"],
]);

/** Accept header for manifest GET/HEAD: every manifest and index type ebb can parse. */
export const MANIFEST_ACCEPT = [OCI_IMAGE_MANIFEST, OCI_IMAGE_INDEX, DOCKER_MANIFEST_V2, DOCKER_MANIFEST_LIST_V2].join(", ");

/** "application/foo+json; charset=utf-8" -> "application/foo+json" */
export function bareMediaType(contentType: string | undefined | null): string | undefined {
  if (!contentType) return undefined;
  const bare = contentType.split(";")[0]!.trim().toLowerCase();
  return bare === "" ? undefined : bare;
}

export function manifestKind(mediaType: string): ManifestKind | undefined {
  return KINDS.get(mediaType);
}

/** Configs that carry an image `created` time (artifact configs such as the OCI empty JSON do not). */
export function isImageConfig(mediaType: string): boolean {
  return mediaType === OCI_IMAGE_CONFIG || mediaType === DOCKER_IMAGE_CONFIG;
}
