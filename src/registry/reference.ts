/** Validation of repository names, tags and digests (OCI distribution spec grammar). */
import { RegistryInputError } from "./errors.js";

// distribution spec: path components separated by "/", each [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
const REPOSITORY = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export function assertRepository(name: string, field = "repository"): void {
  if (typeof name !== "string" || name.length > 255 || !REPOSITORY.test(name)) {
    throw new RegistryInputError(field, `invalid repository name ${JSON.stringify(name)}`);
  }
}

export function isDigest(reference: string): boolean {
  return DIGEST.test(reference);
}

export function assertDigest(digest: string, field = "digest"): void {
  if (typeof digest !== "string" || !DIGEST.test(digest)) {
    throw new RegistryInputError(field, `invalid digest ${JSON.stringify(digest)} (want sha256:<64 hex> or sha512:<128 hex>)`);
  }
}

/** A tag or a digest. */
export function assertReference(reference: string, field = "reference"): void {
  if (typeof reference !== "string" || !(TAG.test(reference) || DIGEST.test(reference))) {
    throw new RegistryInputError(field, `invalid tag or digest ${JSON.stringify(reference)}`);
  }
}
