/** Retry policy for registry requests: which failures are retried, and how long to wait. */

export interface RetryPolicy {
  /** Total attempts including the first (>= 1). */
  attempts: number;
  /** Base of the exponential backoff. */
  baseDelayMs: number;
  /** Cap on one backoff delay. */
  maxDelayMs: number;
  /** Cap on a Retry-After the registry asks for; longer asks are waited this long. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  attempts: 4,
  baseDelayMs: 250,
  maxDelayMs: 10_000,
  maxRetryAfterMs: 60_000,
};

/** 429 and 5xx except 501 (not implemented) and 505 (version not supported) are transient. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599 && status !== 501 && status !== 505);
}

/**
 * Exponential backoff with "equal jitter": half the exponential step fixed, half random, so
 * retries never fire immediately and concurrent clients spread out.
 * @param retry 1 for the wait before the second attempt.
 */
export function backoffDelayMs(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/** Retry-After as delay-seconds or an HTTP-date; undefined when absent or unparsable. */
export function parseRetryAfterMs(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  const trimmed = v.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** The wait before the next attempt: Retry-After when given (capped), else backoff. */
export function retryDelayMs(
  policy: RetryPolicy, retry: number, retryAfter: string | string[] | undefined, random: () => number = Math.random,
): number {
  const asked = parseRetryAfterMs(retryAfter);
  if (asked !== undefined) return Math.min(asked, policy.maxRetryAfterMs);
  return backoffDelayMs(policy, retry, random);
}
