import { Cron } from "croner";

/**
 * A schedule's cron expression parsed by croner: 5 fields (minute first), Harbor's 6 fields
 * (seconds first) or a nickname (@daily), in an IANA time zone. croner computes fire times
 * DST-correctly: a fixed-time job whose local time falls in a spring-forward gap runs at the
 * first valid time after the gap; a local time that occurs twice (fall back) runs once.
 */
export class CronExpression {
  private constructor(private readonly cron: Cron) {}

  /** Parse, or throw an Error whose message says what is wrong (stored as invalid_reason). */
  static parse(pattern: string, timezone: string): CronExpression {
    assertTimezone(timezone);
    let cron: Cron;
    try {
      cron = new Cron(pattern, { timezone, mode: "5-or-6-parts", paused: true });
    } catch (err) {
      throw new Error(`cron ${JSON.stringify(pattern)}: ${(err as Error).message}`);
    }
    const expr = new CronExpression(cron);
    // a pattern that never matches (e.g. 30 February) is as useless as a syntax error
    if (cron.nextRun(new Date()) === null) throw new Error(`cron ${JSON.stringify(pattern)}: never fires`);
    return expr;
  }

  /** The first fire time strictly after `after`, or null when there is none. */
  next(after: Date): Date | null {
    return this.cron.nextRun(after);
  }
}

function assertTimezone(timezone: string): void {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch {
    throw new Error(`timezone ${JSON.stringify(timezone)} is not an IANA time zone known to this Node.js`);
  }
}

/**
 * Parsed expressions by (pattern, timezone): 10,000 policies usually share a handful of
 * patterns, so a tick parses each once. Errors are cached too. Bounded.
 */
export class CronCache {
  private readonly entries = new Map<string, CronExpression | Error>();
  constructor(private readonly max = 10_000) {}

  get(pattern: string, timezone: string): CronExpression | Error {
    const key = `${timezone}\u0000${pattern}`;
    let hit = this.entries.get(key);
    if (hit === undefined) {
      try {
        hit = CronExpression.parse(pattern, timezone);
      } catch (err) {
        hit = err as Error;
      }
      if (this.entries.size >= this.max) this.entries.clear();
      this.entries.set(key, hit);
    }
    return hit;
  }
}
