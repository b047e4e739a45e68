/** The `created` time of an image config blob (OCI image config / Docker container config). */
import { RegistryProtocolError } from "./errors.js";

/**
 * Returns the config's `created` as a Date, or null when the config has none (allowed by the
 * spec, e.g. reproducible builds) or it is not a valid RFC 3339 time.
 */
export function parseConfigCreated(bytes: Uint8Array, what: string): Date | null {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (err) {
    throw new RegistryProtocolError(`${what}: malformed image config: not JSON (${(err as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new RegistryProtocolError(`${what}: malformed image config: not a JSON object`);
  }
  const created = (json as { created?: unknown }).created;
  if (typeof created !== "string") return null;
  // RFC 3339: date, 'T' or space, time, zone. Date.parse is too lenient on its own.
  if (!/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(created)) return null;
  const ms = Date.parse(created.replace(" ", "T"));
  // Go's zero time "0001-01-01T00:00:00Z" means "unknown"
  if (Number.isNaN(ms) || ms <= Date.parse("0001-01-01T00:00:00Z")) return null;
  return new Date(ms);
}
