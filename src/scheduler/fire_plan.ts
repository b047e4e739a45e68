import type { CronExpression } from "./cron_expression.js";

export type MisfirePolicy = "skip" | "run_once" | "backfill";

/** What the tick knows about one schedule. Times are instants; slots are nominal cron times. */
export interface ScheduleTiming {
  cron: CronExpression;
  misfire: MisfirePolicy;
  backfillWindowMs: number;
  /** hash(id) mod spread, in seconds (see spread.ts) */
  offsetSeconds: number;
  /** the first slot not fired yet; null = never computed (new or changed schedule) */
  nextSlot: Date | null;
}

export interface FirePlan {
  /** nominal slots to fire now, oldest first */
  fires: Date[];
  /** due slots dropped by the misfire policy */
  missed: number;
  /** the first slot after the fired/missed ones; null when the cron never fires again */
  nextSlot: Date | null;
  /** nextSlot + offset: when the tick must look at this schedule again */
  nextDueAt: Date | null;
}

/** At most this many slots are enumerated per schedule and tick (a 1-second cron after a day down). */
export const MAX_SLOTS_PER_TICK = 1000;
/** Backfill fires at most this many missed slots (the newest ones). */
export const MAX_BACKFILL = 100;

/**
 * The pure heart of the scheduler: given a schedule's bookkeeping and "now", which slots
 * fire. A slot is due when slot + offset <= now. A due slot is LATE (missed) when
 * now - (slot + offset) > graceMs, i.e. the scheduler was not running when it was due:
 *   skip      late slots are dropped;
 *   run_once  when only late slots are due, the newest one fires once;
 *   backfill  late slots within backfillWindow before now fire (at most MAX_BACKFILL).
 * Slots due within the grace always fire.
 */
export function planFires(s: ScheduleTiming, now: Date, graceMs: number): FirePlan {
  const offsetMs = s.offsetSeconds * 1000;
  if (s.nextSlot === null) {
    // New or changed schedule: the first slot whose due time is after now.
    const next = s.cron.next(new Date(now.getTime() - offsetMs));
    return { fires: [], missed: 0, nextSlot: next, nextDueAt: next && new Date(next.getTime() + offsetMs) };
  }
  const due: Date[] = [];
  let slot: Date | null = s.nextSlot;
  while (slot !== null && slot.getTime() + offsetMs <= now.getTime() && due.length < MAX_SLOTS_PER_TICK) {
    due.push(slot);
    slot = s.cron.next(slot);
  }
  if (slot !== null && slot.getTime() + offsetMs <= now.getTime()) {
    // More than MAX_SLOTS_PER_TICK behind: everything older is missed; jump to now.
    slot = s.cron.next(new Date(now.getTime() - offsetMs));
  }
  const isLate = (d: Date) => now.getTime() - (d.getTime() + offsetMs) > graceMs;
  const onTime = due.filter((d) => !isLate(d));
  const late = due.filter(isLate);
  let fires: Date[];
  switch (s.misfire) {
    case "skip":
      fires = onTime;
      break;
    case "run_once":
      fires = onTime.length > 0 ? onTime : late.slice(-1);
      break;
    case "backfill": {
      const windowStart = now.getTime() - s.backfillWindowMs;
      fires = [...late.filter((d) => d.getTime() + offsetMs >= windowStart).slice(-MAX_BACKFILL), ...onTime];
      break;
    }
  }
  return {
    fires,
    missed: due.length - fires.length,
    nextSlot: slot,
    nextDueAt: slot && new Date(slot.getTime() + offsetMs),
  };
}
