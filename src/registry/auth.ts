/**
 * Registry authentication: anonymous, HTTP basic, and the bearer-token challenge flow of the
 * Docker registry token spec (401 + WWW-Authenticate: Bearer realm/service/scope -> GET realm
 * with the credentials -> token, cached per scope until shortly before it expires).
 *
 * Credentials are held in private fields: they do not show up in util.inspect/JSON of the
 * client, and no error or log built here contains them or a token.
 */
import { RegistryAuthError, RegistryError, RegistryHttpError, RegistryProtocolError } from "./errors.js";
import { isRetryableStatus } from "./retry.js";
import { parseWwwAuthenticate } from "./www_authenticate.js";

export type RegistryCredentials =
  | { kind: "anonymous" }
  /** Sent as HTTP basic auth to the registry, or to the token service on a bearer challenge. */
  | { kind: "basic"; username: string; password: string };

/** What the token service answered; the transport performs the HTTP request. */
export interface TokenHttpResponse {
  status: number;
  body: Buffer;
}
export type TokenFetcher = (url: URL, authorization: string | undefined) => Promise<TokenHttpResponse>;

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Tokens are refreshed this long before they expire. */
const EXPIRY_MARGIN_MS = 10_000;
/** Token lifetime assumed when the service does not say (the spec's default). */
const DEFAULT_TOKEN_LIFETIME_S = 60;

export class Authenticator {
  readonly #credentials: RegistryCredentials;
  readonly #fetchToken: TokenFetcher;
  readonly #now: () => number;
  #mode: "unknown" | "basic" | "bearer" = "unknown";
  #bearer: { realm: URL; service: string | undefined } | undefined;
  readonly #tokens = new Map<string, CachedToken>();
  readonly #inflight = new Map<string, Promise<string>>();

  constructor(credentials: RegistryCredentials, fetchToken: TokenFetcher, now: () => number = Date.now) {
    this.#credentials = credentials;
    this.#fetchToken = fetchToken;
    this.#now = now;
  }

  /** "basic" or "anonymous" - safe to put in messages. */
  get credentialKind(): RegistryCredentials["kind"] {
    return this.#credentials.kind;
  }

  #basicHeader(): string | undefined {
    const c = this.#credentials;
    if (c.kind !== "basic") return undefined;
    return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
  }

  /** The Authorization header to send proactively for `scope`, from what was learnt so far. */
  authorization(scope: string): string | undefined {
    if (this.#mode === "basic") return this.#basicHeader();
    if (this.#mode === "bearer") {
      const cached = this.#tokens.get(scope);
      if (cached && cached.expiresAt > this.#now()) return `Bearer ${cached.token}`;
    }
    return undefined;
  }

  /**
   * Handle a 401: learn the challenge and get what is needed to answer it.
   * @returns true when retrying the request with authorization(scope) may succeed.
   */
  async onUnauthorized(wwwAuthenticate: string | string[] | undefined, scope: string, sent: string | undefined, what: string): Promise<boolean> {
    const challenges = parseWwwAuthenticate(wwwAuthenticate);
    const bearer = challenges.find((c) => c.scheme === "bearer");
    if (bearer) {
      const realmText = bearer.params.realm;
      if (!realmText) throw new RegistryProtocolError(`${what}: bearer challenge without realm`);
      let realm: URL;
      try {
        realm = new URL(realmText);
      } catch {
        throw new RegistryProtocolError(`${what}: bearer challenge realm is not a URL`);
      }
      if ((realm.protocol !== "https:" && realm.protocol !== "http:") || realm.username || realm.password) {
        throw new RegistryProtocolError(`${what}: bearer challenge realm must be an http(s) URL without credentials`);
      }
      this.#mode = "bearer";
      this.#bearer = { realm, service: bearer.params.service };
      const cached = this.#tokens.get(scope);
      if (cached && cached.expiresAt > this.#now() && sent !== `Bearer ${cached.token}`) {
        return true; // a concurrent request fetched a token meanwhile: use it
      }
      if (sent?.startsWith("Bearer ")) {
        // the token we sent was refused: drop it and fetch a fresh one (the transport
        // bounds these rounds, so a token that never works ends in a RegistryAuthError)
        this.#tokens.delete(scope);
      }
      const requested = bearer.params.scope ?? scope;
      await this.#token(scope, requested, what);
      return true;
    }
    const basic = challenges.find((c) => c.scheme === "basic");
    if (basic && this.#credentials.kind === "basic" && !sent?.startsWith("Basic ")) {
      this.#mode = "basic";
      return true;
    }
    return false;
  }

  async #token(cacheKey: string, requestedScope: string, what: string): Promise<string> {
    const pending = this.#inflight.get(cacheKey);
    if (pending) return pending;
    const promise = this.#requestToken(cacheKey, requestedScope, what).finally(() => this.#inflight.delete(cacheKey));
    this.#inflight.set(cacheKey, promise);
    return promise;
  }

  async #requestToken(cacheKey: string, requestedScope: string, what: string): Promise<string> {
    const b = this.#bearer!;
    const url = new URL(b.realm);
    if (b.service !== undefined) url.searchParams.set("service", b.service);
    for (const s of requestedScope.split(" ").filter(Boolean)) url.searchParams.append("scope", s);
    const where = `token service ${b.realm.origin}${b.realm.pathname}`;
    let res: TokenHttpResponse;
    try {
      res = await this.#fetchToken(url, this.#basicHeader());
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      throw new RegistryAuthError(`${what}: ${where} failed: ${(err as Error).message}`, undefined);
    }
    if (res.status === 401 || res.status === 403) {
      throw new RegistryAuthError(
        `${what}: ${where} refused the ${this.#credentials.kind} credentials (HTTP ${res.status})`, res.status,
      );
    }
    if (res.status !== 200) {
      const retryable = isRetryableStatus(res.status);
      throw new RegistryHttpError(`${what}: ${where} answered HTTP ${res.status}`, res.status, undefined, retryable);
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(res.body.toString("utf8")) as typeof body;
    } catch {
      throw new RegistryAuthError(`${what}: ${where} answered malformed JSON`, 200);
    }
    const token = typeof body.token === "string" && body.token ? body.token
      : typeof body.access_token === "string" && body.access_token ? body.access_token : undefined;
    if (token === undefined) throw new RegistryAuthError(`${what}: ${where} answered without a token`, 200);
    const lifetime = typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_LIFETIME_S;
    this.#tokens.set(cacheKey, {
      token,
      expiresAt: this.#now() + Math.max(lifetime * 1000 - EXPIRY_MARGIN_MS, lifetime * 500),
    });
    return token;
  }
}
