/**
 * The process's job slots: at most `size` job handlers run at once across the worker's
 * lanes (runner.ts runs two graphile-worker runners, each with that concurrency). A handler
 * past the limit waits for a slot in arrival order; its job stays claimed meanwhile.
 *
 * `limit` may lower the number for a while: when the database refuses new connections and
 * the pool holds only a few, handlers that each need a connection (and some a second one
 * for a moment) would all wait on each other; fewer run at once and they finish.
 */
export class JobSlots {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private recheck: NodeJS.Timeout | undefined;

  constructor(readonly size: number, private readonly limit: () => number = () => size) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.waiting.length === 0 && this.running < this.allowed()) this.running++;
    else {
      await new Promise<void>((resolve) => {
        this.waiting.push(resolve);
        this.recheckLater();
      });
    }
    try {
      return await fn();
    } finally {
      this.running--;
      this.admit();
    }
  }

  private allowed(): number {
    return Math.max(1, Math.min(this.size, this.limit()));
  }

  /** Waiters take the free slots in arrival order. */
  private admit(): void {
    while (this.waiting.length > 0 && this.running < this.allowed()) {
      this.running++;
      this.waiting.shift()!();
    }
    if (this.waiting.length > 0) this.recheckLater();
  }

  /** A lowered limit rises again by itself: look again shortly while handlers wait. */
  private recheckLater(): void {
    if (this.recheck || this.allowed() >= this.size) return;
    this.recheck = setTimeout(() => {
      this.recheck = undefined;
      this.admit();
    }, 250);
    this.recheck.unref();
  }
}
