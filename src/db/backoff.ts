/**
 * Bounded exponential backoff with jitter: the one waiting rule of every path that retries
 * the database (src/db/database_weather.ts). Attempt n waits a random time between half and
 * all of min(maxMs, initialMs * factor^n), so many waiters (several processes refused at the
 * same instant) spread out instead of knocking again together.
 */
export interface Backoff {
  initialMs: number;
  maxMs: number;
  factor: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 100, maxMs: 2_000, factor: 2 };

export function backoffDelay(attempt: number, b: Backoff = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(b.maxMs, b.initialMs * b.factor ** Math.max(0, attempt));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Sleep `ms`, or less when `signal` aborts first (never rejects). */
export function sleepUnlessAborted(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Consecutive failures of a periodic job (a scheduler tick, a maintenance pass): the delay
 * before its next run is its usual period, or the backoff when that is longer.
 */
export class FailureStreak {
  private failures = 0;

  constructor(private readonly b: Backoff = DEFAULT_BACKOFF) {}

  /** A run failed: the delay before the next one (at least `periodMs`). */
  failed(periodMs: number): number {
    return Math.max(periodMs, backoffDelay(this.failures++, this.b));
  }

  succeeded(): void {
    this.failures = 0;
  }

  get count(): number {
    return this.failures;
  }
}
