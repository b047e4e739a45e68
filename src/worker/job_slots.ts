/**
 * The process's job slots: at most `size` job handlers run at once across the worker's
 * lanes (runner.ts runs two graphile-worker runners, each with that concurrency). A handler
 * past the limit waits for a slot in arrival order; its job stays claimed meanwhile.
 */
export class JobSlots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly size: number) {
    this.free = size;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // the slot passes straight to the next waiter
      else this.free++;
    }
  }
}
