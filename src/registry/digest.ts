/** Content digests of manifest and blob bytes. */
import { createHash } from "node:crypto";
import { RegistryProtocolError } from "./errors.js";

export function computeDigest(bytes: Uint8Array, algorithm: "sha256" | "sha512" = "sha256"): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

/**
 * Check bytes against an expected digest (its algorithm decides the hash). Throws a
 * RegistryProtocolError naming `what` on mismatch or an unsupported algorithm.
 */
export function verifyDigest(bytes: Uint8Array, expected: string, what: string): void {
  const algorithm = expected.split(":", 1)[0];
  if (algorithm !== "sha256" && algorithm !== "sha512") {
    throw new RegistryProtocolError(`${what}: unsupported digest algorithm in ${JSON.stringify(expected)}`);
  }
  const actual = computeDigest(bytes, algorithm);
  if (actual !== expected) {
    throw new RegistryProtocolError(`${what}: digest mismatch: content hashes to ${actual}, expected ${expected}`);
  }
}
