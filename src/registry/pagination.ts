/**
 * Link-header pagination of /v2/_catalog and /v2/<name>/tags/list:
 *   Link: </v2/_catalog?last=b&n=2>; rel="next"
 * The next URL is resolved against the current one and must stay on the registry's origin
 * (scheme, host, port) and under /v2/: a Link elsewhere is refused, never followed.
 */
import { RegistryProtocolError } from "./errors.js";

/** The rel="next" target of a Link header, or undefined. */
export function parseNextLink(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const values = Array.isArray(header) ? header : [header];
  for (const value of values) {
    const re = /<([^>]*)>((?:\s*;\s*[^;,<]+)*)/g;
    let m: RegExpExecArray | null;
    while ((m = re.exec(value)) !== null) {
      const params = m[2] ?? "";
      const rel = /;\s*rel\s*=\s*"?([^";]+)"?/i.exec(params);
      if (rel && rel[1]!.trim().split(/\s+/).includes("next")) return m[1];
    }
  }
  return undefined;
}

/** Resolve a next link against the current page URL, refusing any other origin. */
export function resolveNextPage(link: string, current: URL, registryOrigin: string, what: string): URL {
  let next: URL;
  try {
    next = new URL(link, current);
  } catch {
    throw new RegistryProtocolError(`${what}: malformed pagination Link ${JSON.stringify(link)}`);
  }
  if (next.origin !== registryOrigin) {
    throw new RegistryProtocolError(
      `${what}: refused pagination Link to another origin ${next.origin} (registry is ${registryOrigin})`,
    );
  }
  if (next.username !== "" || next.password !== "") {
    throw new RegistryProtocolError(`${what}: refused pagination Link carrying credentials`);
  }
  if (!next.pathname.startsWith("/v2/")) {
    throw new RegistryProtocolError(`${what}: refused pagination Link outside /v2/: ${next.pathname}`);
  }
  return next;
}
