/**
 * htpasswd entries for docker-registry's basic auth. distribution accepts only bcrypt
 * entries; node has no bcrypt, so we use the system crypt(3) through perl (libxcrypt
 * implements $2b$). No npm dependency needed.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";

const BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** Why a bcrypt htpasswd entry cannot be made on this machine, or undefined when it can. */
export function htpasswdUnavailableReason(): string | undefined {
  try {
    bcryptHash("probe");
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

export function bcryptHash(password: string): string {
  const bytes = randomBytes(22);
  let salt = "";
  for (let i = 0; i < 21; i++) salt += BCRYPT_ALPHABET[bytes[i]! % 64];
  salt += ".Oeu"[bytes[21]! % 4]; // last salt char only carries 2 bits: keep it canonical
  const result = spawnSync("perl", ["-e", "print crypt($ENV{EBB_PW}, $ENV{EBB_SALT})"], {
    env: { ...process.env, EBB_PW: password, EBB_SALT: `$2b$05$${salt}` },
    encoding: "utf8",
  });
  const out = (result.stdout ?? "").trim();
  if (result.status !== 0 || !out.startsWith("$2b$05$") || out.length !== 60) {
    throw new Error("bcrypt via perl crypt(3) is not available (need perl and libxcrypt)");
  }
  return out;
}

export function htpasswdLine(username: string, password: string): string {
  return `${username}:${bcryptHash(password)}\n`;
}
