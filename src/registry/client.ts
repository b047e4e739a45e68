/**
 * OCI Distribution client for one registry: catalog and tag listing (Link pagination),
 * manifest HEAD/GET with digest verification and parsing, image config `created`, and
 * manifest DELETE. Transport concerns (auth, retries, timeouts, concurrency) live in
 * ./transport.ts.
 */
import type { RegistryCredentials } from "./auth.js";
import { verifyDigest, computeDigest } from "./digest.js";
import { RegistryAuthError, RegistryHttpError, RegistryInputError, RegistryProtocolError } from "./errors.js";
import { parseConfigCreated } from "./image_config.js";
import { parseManifest, type Descriptor, type ParsedManifest } from "./manifest.js";
import { bareMediaType, isImageConfig, MANIFEST_ACCEPT } from "./media_types.js";
import { parseNextLink, resolveNextPage } from "./pagination.js";
import { assertDigest, assertReference, assertRepository, isDigest } from "./reference.js";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "./retry.js";
import { distributionErrorCode, EBB_USER_AGENT, firstHeader, Transport, type HttpResponse, type RegistryLogger } from "./transport.js";

export interface RegistryClientOptions {
  /** Registry origin, e.g. "https://registry.example:5000" (no path, no credentials). */
  baseUrl: string;
  credentials?: RegistryCredentials;
  /** Concurrent requests to this registry (default 8). */
  concurrency?: number;
  /** Per-attempt timeout in ms, headers and body (default 30 s). */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  logger?: RegistryLogger;
  /** Default `ebb/<version>`: the notifications ingest ignores pulls with that agent. */
  userAgent?: string;
  /** Page size asked of /_catalog and /tags/list (default 1000). */
  pageSize?: number;
  /** Largest manifest accepted (default 4 MiB, the distribution limit). */
  maxManifestBytes?: number;
  /** Largest image config accepted (default 8 MiB). */
  maxConfigBytes?: number;
  /** For tests: jitter source and sleep. */
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface ManifestHead {
  digest: string;
  mediaType: string | undefined;
  size: number | undefined;
}

export interface FetchedManifest {
  repository: string;
  /** what was asked for: a tag or a digest */
  reference: string;
  /** sha256 of the bytes, checked against Docker-Content-Digest and a digest reference */
  digest: string;
  mediaType: string;
  size: number;
  bytes: Buffer;
  manifest: ParsedManifest;
}

export type DeleteOutcome = "deleted" | "already_deleted";

const MAX_PAGES = 1_000_000;

/**
 * /v2/_catalog answered 401, 403 or 404: the registry does not list its repositories to this
 * account (GHCR, Docker Hub, Quay and others serve no catalog to ordinary accounts).
 */
export class CatalogUnavailableError extends RegistryHttpError {
  override name = "CatalogUnavailableError";
}

function parseOrigin(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new RegistryInputError("baseUrl", "not a URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new RegistryInputError("baseUrl", `must be http(s), got ${url.protocol}`);
  }
  if (url.username !== "" || url.password !== "") {
    throw new RegistryInputError("baseUrl", "must not contain credentials; pass them as credentials");
  }
  if (url.pathname !== "/" && url.pathname !== "" || url.search !== "" || url.hash !== "") {
    throw new RegistryInputError("baseUrl", "must be an origin without path, query or fragment");
  }
  return url.origin;
}

function positiveInt(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new RegistryInputError(field, `must be a positive integer, got ${value}`);
  return value;
}

export class RegistryClient {
  readonly origin: string;
  readonly #transport: Transport;
  readonly #pageSize: number;
  readonly #maxManifestBytes: number;
  readonly #maxConfigBytes: number;

  constructor(opts: RegistryClientOptions) {
    this.origin = parseOrigin(opts.baseUrl);
    const retry = { ...DEFAULT_RETRY_POLICY, ...opts.retry };
    positiveInt(retry.attempts, 1, "retry.attempts");
    this.#pageSize = positiveInt(opts.pageSize, 1000, "pageSize");
    this.#maxManifestBytes = positiveInt(opts.maxManifestBytes, 4 * 1024 * 1024, "maxManifestBytes");
    this.#maxConfigBytes = positiveInt(opts.maxConfigBytes, 8 * 1024 * 1024, "maxConfigBytes");
    this.#transport = new Transport({
      origin: this.origin,
      credentials: opts.credentials ?? { kind: "anonymous" },
      concurrency: positiveInt(opts.concurrency, 8, "concurrency"),
      timeoutMs: positiveInt(opts.timeoutMs, 30_000, "timeoutMs"),
      retry,
      userAgent: opts.userAgent ?? EBB_USER_AGENT,
      logger: opts.logger,
      random: opts.random,
      sleep: opts.sleep,
    });
  }

  async close(): Promise<void> {
    await this.#transport.close();
  }

  #url(path: string): URL {
    return new URL(path, this.origin);
  }

  #unexpected(res: HttpResponse, what: string): RegistryHttpError {
    const code = distributionErrorCode(res.body);
    return new RegistryHttpError(`${what}: unexpected HTTP ${res.status}${code ? ` ${code}` : ""} from ${this.origin}`, res.status, code, false);
  }

  /** Follow Link rel="next" pages (same origin only), collecting `field` string arrays. */
  async #paginate(first: URL, field: "repositories" | "tags", scope: string, what: string): Promise<string[] | null> {
    const out: string[] = [];
    const seen = new Set<string>();
    let url: URL | undefined = first;
    for (let page = 0; url !== undefined; page++) {
      if (page >= MAX_PAGES || seen.has(url.href)) {
        throw new RegistryProtocolError(`${what}: pagination does not end (page ${page} repeats or exceeds ${MAX_PAGES})`);
      }
      seen.add(url.href);
      const res = await this.#transport.send({
        method: "GET", url, scope, what, maxBodyBytes: 64 * 1024 * 1024, headers: { accept: "application/json" },
      });
      if (res.status === 404 && field === "tags" && page === 0) return null;
      if (res.status !== 200) throw this.#unexpected(res, what);
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(res.body.toString("utf8")) as Record<string, unknown>;
      } catch {
        throw new RegistryProtocolError(`${what}: malformed JSON page`);
      }
      const items = body[field];
      if (items !== null && items !== undefined) {
        if (!Array.isArray(items) || items.some((i) => typeof i !== "string")) {
          throw new RegistryProtocolError(`${what}: malformed page: ${field} is not an array of strings`);
        }
        out.push(...(items as string[]));
      }
      const link = parseNextLink(res.headers.link);
      url = link === undefined ? undefined : resolveNextPage(link, url, this.origin, what);
    }
    return out;
  }

  /**
   * Every repository name of /v2/_catalog, following all pages. A refused catalog (401, 403
   * or 404) throws CatalogUnavailableError.
   */
  async listRepositories(opts: { pageSize?: number } = {}): Promise<string[]> {
    const n = positiveInt(opts.pageSize, this.#pageSize, "pageSize");
    try {
      const repos = await this.#paginate(this.#url(`/v2/_catalog?n=${n}`), "repositories", "registry:catalog:*", "list repositories");
      return repos ?? [];
    } catch (err) {
      const status = err instanceof RegistryAuthError || err instanceof RegistryHttpError ? err.status : undefined;
      if (status === 401 || status === 403 || status === 404) {
        const code = err instanceof RegistryHttpError ? err.code : undefined;
        throw new CatalogUnavailableError(
          `${this.origin} does not serve /v2/_catalog to this account (HTTP ${status}${code ? ` ${code}` : ""}; ${(err as Error).message})`,
          status, code, false,
        );
      }
      throw err;
    }
  }

  /** Every tag of a repository, following all pages; null when the registry does not know the repository. */
  async listTags(repository: string, opts: { pageSize?: number } = {}): Promise<string[] | null> {
    assertRepository(repository);
    const n = positiveInt(opts.pageSize, this.#pageSize, "pageSize");
    return this.#paginate(
      this.#url(`/v2/${repository}/tags/list?n=${n}`), "tags", `repository:${repository}:pull`, `list tags of ${repository}`,
    );
  }

  /** HEAD a manifest; null when it does not exist. */
  async headManifest(repository: string, reference: string): Promise<ManifestHead | null> {
    assertRepository(repository);
    assertReference(reference);
    const what = `head manifest ${repository}${isDigest(reference) ? "@" : ":"}${reference}`;
    const res = await this.#transport.send({
      method: "HEAD", url: this.#url(`/v2/${repository}/manifests/${reference}`), scope: `repository:${repository}:pull`,
      what, maxBodyBytes: 0, headers: { accept: MANIFEST_ACCEPT },
    });
    if (res.status === 404) return null;
    if (res.status !== 200) throw this.#unexpected(res, what);
    const digest = firstHeader(res.headers["docker-content-digest"]) ?? (isDigest(reference) ? reference : undefined);
    if (digest === undefined || !isDigest(digest)) {
      throw new RegistryProtocolError(`${what}: no valid Docker-Content-Digest header`);
    }
    if (isDigest(reference) && digest !== reference) {
      throw new RegistryProtocolError(`${what}: digest mismatch: registry says ${digest}`);
    }
    const size = Number(firstHeader(res.headers["content-length"]));
    return { digest, mediaType: bareMediaType(firstHeader(res.headers["content-type"])), size: Number.isFinite(size) ? size : undefined };
  }

  /**
   * GET and parse a manifest; null when it does not exist. The bytes are hashed and must match
   * the digest reference and the Docker-Content-Digest header.
   */
  async getManifest(repository: string, reference: string): Promise<FetchedManifest | null> {
    assertRepository(repository);
    assertReference(reference);
    const what = `get manifest ${repository}${isDigest(reference) ? "@" : ":"}${reference}`;
    const res = await this.#transport.send({
      method: "GET", url: this.#url(`/v2/${repository}/manifests/${reference}`), scope: `repository:${repository}:pull`,
      what, maxBodyBytes: this.#maxManifestBytes, headers: { accept: MANIFEST_ACCEPT },
    });
    if (res.status === 404) return null;
    if (res.status !== 200) throw this.#unexpected(res, what);
    const header = firstHeader(res.headers["docker-content-digest"]);
    if (isDigest(reference)) verifyDigest(res.body, reference, what);
    if (header !== undefined) {
      if (!isDigest(header)) throw new RegistryProtocolError(`${what}: malformed Docker-Content-Digest header`);
      verifyDigest(res.body, header, what);
    }
    const digest = isDigest(reference) ? reference : header ?? computeDigest(res.body);
    const manifest = parseManifest(res.body, firstHeader(res.headers["content-type"]), what);
    return { repository, reference, digest, mediaType: manifest.mediaType, size: res.body.length, bytes: res.body, manifest };
  }

  /** GET a blob, verified against its digest (redirects to storage are followed without credentials). */
  async getBlob(repository: string, digest: string, maxBytes: number = this.#maxConfigBytes): Promise<Buffer | null> {
    assertRepository(repository);
    assertDigest(digest);
    const what = `get blob ${repository}@${digest}`;
    const res = await this.#transport.send({
      method: "GET", url: this.#url(`/v2/${repository}/blobs/${digest}`), scope: `repository:${repository}:pull`,
      what, maxBodyBytes: maxBytes, followRedirects: true,
    });
    if (res.status === 404) return null;
    if (res.status !== 200) throw this.#unexpected(res, what);
    verifyDigest(res.body, digest, what);
    return res.body;
  }

  /**
   * The `created` time of an image manifest's config. null for indexes, artifacts whose config
   * is not an image config, configs without `created`, and a config blob that is gone.
   */
  async getImageCreated(repository: string, manifest: ParsedManifest): Promise<Date | null> {
    if (manifest.kind !== "image" || !isImageConfig(manifest.config.mediaType)) return null;
    const config: Descriptor = manifest.config;
    if (config.size > this.#maxConfigBytes) {
      throw new RegistryProtocolError(`get config ${repository}@${config.digest}: ${config.size} bytes exceeds the limit`);
    }
    const bytes = await this.getBlob(repository, config.digest);
    if (bytes === null) return null;
    return parseConfigCreated(bytes, `config ${repository}@${config.digest}`);
  }

  /**
   * DELETE a manifest by digest (tags pointing at it go with it). A 404 means someone else
   * already deleted it: returned as "already_deleted", not an error. beforeSend runs right
   * before each attempt goes out (retries included): throwing there sends nothing more.
   */
  async deleteManifest(repository: string, digest: string, opts: { beforeSend?: () => void } = {}): Promise<DeleteOutcome> {
    assertRepository(repository);
    assertDigest(digest);
    const what = `delete manifest ${repository}@${digest}`;
    const res = await this.#transport.send({
      method: "DELETE", url: this.#url(`/v2/${repository}/manifests/${digest}`), scope: `repository:${repository}:delete`,
      what, maxBodyBytes: 64 * 1024, beforeSend: opts.beforeSend,
    });
    if (res.status === 202 || res.status === 200 || res.status === 204) return "deleted";
    if (res.status === 404) return "already_deleted";
    if (res.status === 405) {
      const err = this.#unexpected(res, what);
      err.message = `${what}: the registry does not allow deletes (HTTP 405; distribution needs storage.delete.enabled)`;
      throw err;
    }
    throw this.#unexpected(res, what);
  }
}
