/**
 * HTTP transport to one registry, on undici: per-attempt timeout, bounded retries with
 * exponential backoff + jitter on 429/5xx/network errors (Retry-After honoured), a
 * concurrency limit (p-limit over an undici Agent with as many connections), the 401
 * challenge dance of ./auth.ts, size-capped bodies and optional redirects (blob downloads).
 * Never logs or throws credentials: messages carry method, origin+path and status only.
 */
import pLimit, { type LimitFunction } from "p-limit";
import { Agent, errors as undiciErrors, request, type Dispatcher } from "undici";
import type { IncomingHttpHeaders } from "node:http";
import { Authenticator, type RegistryCredentials } from "./auth.js";
import { RegistryAuthError, RegistryError, RegistryHttpError, RegistryNetworkError, RegistryProtocolError } from "./errors.js";
import { EBB_USER_AGENT } from "./user_agent.js";
import { DEFAULT_RETRY_POLICY, isRetryableStatus, retryDelayMs, type RetryPolicy } from "./retry.js";

/** pino-compatible subset. */
export interface RegistryLogger {
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface TransportOptions {
  origin: string;
  credentials: RegistryCredentials;
  concurrency: number;
  timeoutMs: number;
  retry: RetryPolicy;
  userAgent: string;
  logger?: RegistryLogger;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface HttpRequest {
  method: "GET" | "HEAD" | "DELETE";
  url: URL;
  headers?: Record<string, string>;
  /** token scope, e.g. "repository:a/b:pull" or "registry:catalog:*" */
  scope: string;
  /** bodies longer than this are refused (RegistryProtocolError) */
  maxBodyBytes: number;
  /** names the operation in errors and logs, e.g. "get manifest a/b:v1" */
  what: string;
  followRedirects?: boolean;
  /** called right before each request is sent (every attempt); throwing stops the request unsent */
  beforeSend?: () => void;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  url: URL;
}

const ERROR_BODY_LIMIT = 64 * 1024;
const MAX_REDIRECTS = 5;

export function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** First `code` of a Distribution error body {"errors":[{"code":...}]}. */
export function distributionErrorCode(body: Buffer): string | undefined {
  try {
    const parsed = JSON.parse(body.toString("utf8")) as { errors?: Array<{ code?: unknown }> };
    const code = parsed.errors?.[0]?.code;
    return typeof code === "string" ? code : undefined;
  } catch {
    return undefined;
  }
}

function networkMessage(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError" || e.name === "AbortError" || e instanceof undiciErrors.HeadersTimeoutError
    || e instanceof undiciErrors.BodyTimeoutError || e instanceof undiciErrors.ConnectTimeoutError) {
    return `timed out after ${timeoutMs} ms`;
  }
  const code = e.code ?? e.cause?.code;
  const msg = e.message ?? String(err);
  return code && !msg.includes(code) ? `${code}: ${msg}` : msg;
}

export class Transport {
  readonly origin: string;
  readonly auth: Authenticator;
  readonly #agent: Agent;
  readonly #limit: LimitFunction;
  readonly #opts: TransportOptions;
  readonly #random: () => number;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(opts: TransportOptions) {
    this.origin = opts.origin;
    this.#opts = opts;
    this.#random = opts.random ?? Math.random;
    this.#sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#limit = pLimit(opts.concurrency);
    this.#agent = new Agent({
      connections: opts.concurrency,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      connect: { timeout: Math.min(opts.timeoutMs, 10_000) },
    });
    this.auth = new Authenticator(opts.credentials, async (url, authorization) => {
      const res = await this.#raw("GET", url, authorization ? { authorization } : {}, 1024 * 1024, "token request");
      return { status: res.status, body: res.body };
    });
  }

  /** Requests waiting for or holding a concurrency slot. */
  get pending(): number {
    return this.#limit.activeCount + this.#limit.pendingCount;
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  /**
   * Send with retries. Returns any final non-retryable status for the caller to interpret;
   * throws RegistryHttpError after the last retryable status, RegistryNetworkError after the
   * last network failure, RegistryAuthError on 401/403.
   */
  async send(req: HttpRequest): Promise<HttpResponse> {
    const policy = this.#opts.retry;
    for (let attempt = 1; ; attempt++) {
      let delay: number;
      let reason: object;
      try {
        const res = await this.#limit(() => this.#attempt(req));
        if (!isRetryableStatus(res.status)) return res;
        const code = distributionErrorCode(res.body);
        if (attempt >= policy.attempts) {
          throw new RegistryHttpError(
            `${req.what}: HTTP ${res.status}${code ? ` ${code}` : ""} from ${this.origin} after ${attempt} attempts`,
            res.status, code, true,
          );
        }
        delay = retryDelayMs(policy, attempt, res.headers["retry-after"], this.#random);
        reason = { status: res.status };
      } catch (err) {
        if (!(err instanceof RegistryError) || !err.retryable || attempt >= policy.attempts) {
          if (err instanceof RegistryNetworkError && attempt > 1) {
            throw new RegistryNetworkError(`${err.message} (after ${attempt} attempts)`);
          }
          throw err;
        }
        delay = retryDelayMs(policy, attempt, undefined, this.#random);
        reason = { error: err.message };
      }
      this.#opts.logger?.warn(
        { registry: this.origin, method: req.method, path: req.url.pathname, attempt, delayMs: delay, ...reason },
        "registry request failed, retrying",
      );
      await this.#sleep(delay);
    }
  }

  async #attempt(req: HttpRequest): Promise<HttpResponse> {
    let url = req.url;
    let authRounds = 0;
    let redirects = 0;
    for (;;) {
      const sameOrigin = url.origin === this.origin;
      const authorization = sameOrigin ? this.auth.authorization(req.scope) : undefined;
      const headers: Record<string, string> = { ...req.headers };
      if (authorization !== undefined) headers.authorization = authorization;
      req.beforeSend?.();
      const res = await this.#raw(req.method, url, headers, req.maxBodyBytes, req.what);
      if (res.status === 401 && sameOrigin && authRounds < 2) {
        authRounds++;
        if (await this.auth.onUnauthorized(res.headers["www-authenticate"], req.scope, authorization, req.what)) continue;
      }
      if (res.status === 401 || res.status === 403) {
        const code = distributionErrorCode(res.body);
        throw new RegistryAuthError(
          `${req.what}: HTTP ${res.status}${code ? ` ${code}` : ""} from ${url.origin} with ${this.auth.credentialKind} credentials`,
          res.status,
        );
      }
      if (req.followRedirects && [301, 302, 303, 307, 308].includes(res.status)) {
        const location = firstHeader(res.headers.location);
        if (location && redirects < MAX_REDIRECTS) {
          redirects++;
          const next = new URL(location, url);
          if (next.protocol !== "https:" && next.protocol !== "http:") {
            throw new RegistryProtocolError(`${req.what}: refused redirect to ${next.protocol} URL`);
          }
          url = next;
          continue;
        }
      }
      return { ...res, url };
    }
  }

  async #raw(
    method: string, url: URL, headers: Record<string, string>, maxBodyBytes: number, what: string,
  ): Promise<Omit<HttpResponse, "url">> {
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method: method as Dispatcher.HttpMethod,
        headers: { "user-agent": this.#opts.userAgent, ...headers },
        dispatcher: this.#agent,
        signal: AbortSignal.timeout(this.#opts.timeoutMs),
      });
    } catch (err) {
      throw new RegistryNetworkError(`${what}: ${method} ${url.origin}${url.pathname} failed: ${networkMessage(err, this.#opts.timeoutMs)}`);
    }
    const ok = res.statusCode >= 200 && res.statusCode < 300;
    const limit = ok ? maxBodyBytes : ERROR_BODY_LIMIT;
    const declared = Number(firstHeader(res.headers["content-length"]) ?? NaN);
    if (method !== "HEAD" && ok && Number.isFinite(declared) && declared > limit) {
      discard(res.body);
      throw new RegistryProtocolError(`${what}: response of ${declared} bytes exceeds the limit of ${limit} bytes`);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of res.body) {
        const buf = chunk as Buffer;
        total += buf.length;
        if (total > limit) {
          discard(res.body);
          if (ok) throw new RegistryProtocolError(`${what}: response exceeds the limit of ${limit} bytes`);
          break; // error bodies are only read for their code
        }
        chunks.push(buf);
      }
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      throw new RegistryNetworkError(`${what}: ${method} ${url.origin}${url.pathname} body failed: ${networkMessage(err, this.#opts.timeoutMs)}`);
    }
    return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) };
  }
}

/**
 * Stop reading a response body. undici's body stream emits "Request aborted" when destroyed
 * without an error; with no listener that is an uncaught exception, which stops ebb: a
 * registry answering more than the limit must not take the process down.
 */
function discard(body: Dispatcher.ResponseData["body"]): void {
  body.on("error", () => {});
  body.destroy();
}

export { DEFAULT_RETRY_POLICY, EBB_USER_AGENT };
