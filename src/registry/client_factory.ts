/**
 * A RegistryClient for one ebb.registries row.
 *
 * credentials_ref says WHERE the secret lives, never the secret itself:
 *   env:NAME     the environment variable NAME holds "username:password"
 *   file:/path   the file holds "username:password" (trailing newline ignored)
 * auth_kind 'anonymous' needs no credentials_ref; 'basic' and 'bearer' need one (for 'bearer'
 * the username/password are sent to the token service named by the registry's challenge).
 * Errors name the field and the reference, never the secret.
 */
import { readFileSync } from "node:fs";
import type pg from "pg";
import type { RegistryCredentials } from "./auth.js";
import { RegistryClient, type RegistryClientOptions } from "./client.js";
import type { RegistryLogger } from "./transport.js";

export interface RegistryRecord {
  id: number;
  name: string;
  base_url: string;
  auth_kind: "anonymous" | "basic" | "bearer";
  credentials_ref: string | null;
}

export class RegistryConfigError extends Error {
  override name = "RegistryConfigError";
}

export async function readRegistryRecord(db: Pick<pg.Pool, "query">, registryId: number): Promise<RegistryRecord | undefined> {
  const { rows } = await db.query<RegistryRecord>(
    "select id, name, base_url, auth_kind, credentials_ref from ebb.registries where id = $1",
    [registryId],
  );
  return rows[0];
}

function splitUserPassword(value: string, where: string): { username: string; password: string } {
  const colon = value.indexOf(":");
  if (colon <= 0) throw new RegistryConfigError(`registries.credentials_ref: ${where} must hold "username:password"`);
  return { username: value.slice(0, colon), password: value.slice(colon + 1) };
}

/** Resolve a registry's credentials from its credentials_ref. */
export function resolveCredentials(
  record: Pick<RegistryRecord, "name" | "auth_kind" | "credentials_ref">,
  env: NodeJS.ProcessEnv = process.env,
): RegistryCredentials {
  if (record.auth_kind === "anonymous") return { kind: "anonymous" };
  const ref = record.credentials_ref;
  if (!ref) {
    throw new RegistryConfigError(`registries.credentials_ref: registry ${record.name} has auth_kind ${record.auth_kind} but no credentials_ref (e.g. env:REGISTRY_CREDENTIALS)`);
  }
  if (ref.startsWith("env:")) {
    const name = ref.slice(4);
    const value = env[name];
    if (value === undefined || value === "") {
      throw new RegistryConfigError(`registries.credentials_ref: environment variable ${name} (registry ${record.name}) is not set`);
    }
    return { kind: "basic", ...splitUserPassword(value, `environment variable ${name}`) };
  }
  if (ref.startsWith("file:")) {
    const path = ref.slice(5);
    let value: string;
    try {
      value = readFileSync(path, "utf8").replace(/\r?\n$/, "");
    } catch (err) {
      throw new RegistryConfigError(`registries.credentials_ref: cannot read ${path} (registry ${record.name}): ${(err as NodeJS.ErrnoException).code ?? "error"}`);
    }
    return { kind: "basic", ...splitUserPassword(value, `file ${path}`) };
  }
  throw new RegistryConfigError(`registries.credentials_ref: must be env:NAME or file:/path (registry ${record.name})`);
}

export function createRegistryClient(
  record: RegistryRecord,
  opts: { env?: NodeJS.ProcessEnv; logger?: RegistryLogger } & Omit<RegistryClientOptions, "baseUrl" | "credentials" | "logger"> = {},
): RegistryClient {
  const { env, ...rest } = opts;
  return new RegistryClient({ ...rest, baseUrl: record.base_url, credentials: resolveCredentials(record, env) });
}
