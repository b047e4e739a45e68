/**
 * The user agent of every request ebb sends to a registry: `ebb/<version>` (the version of
 * package.json). The notifications ingest recognises it and never counts ebb's own reads
 * (sync, fresh reads before deleting) as pulls, whatever EBB_EVENTS_IGNORE_USER_AGENTS says.
 */
import { readFileSync } from "node:fs";

export const EBB_USER_AGENT_PREFIX = "ebb/";
export const EBB_USER_AGENT = `${EBB_USER_AGENT_PREFIX}${packageVersion()}`;

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" && pkg.version !== "" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}

/** Does a request's user agent say it came from ebb (starts with `ebb/`, any case)? */
export function isEbbUserAgent(userAgent: string | undefined): boolean {
  return userAgent !== undefined && userAgent.trimStart().toLowerCase().startsWith(EBB_USER_AGENT_PREFIX);
}
