import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CronExpression } from "../../src/scheduler/cron_expression.js";
import { planFires, type MisfirePolicy } from "../../src/scheduler/fire_plan.js";
import { spreadOffsetSeconds } from "../../src/scheduler/spread.js";

/** Run the scheduler's fire computation tick by tick (every `stepMs`) from `from` to `to`. */
function simulate(pattern: string, tz: string, from: string, to: string, stepMs = 60_000, graceMs = 60_000): Date[] {
  const cron = CronExpression.parse(pattern, tz);
  const fired: Date[] = [];
  let nextSlot: Date | null = null;
  for (let t = Date.parse(from); t <= Date.parse(to); t += stepMs) {
    const plan = planFires({ cron, misfire: "skip", backfillWindowMs: 0, offsetSeconds: 0, nextSlot }, new Date(t), graceMs);
    fired.push(...plan.fires);
    nextSlot = plan.nextSlot;
  }
  return fired;
}

const local = (d: Date, tz: string) => d.toLocaleString("sv-SE", { timeZone: tz });
const iso = (ds: Date[]) => ds.map((d) => d.toISOString());

describe("DST: fire times in IANA zones (croner)", () => {
  test("Europe/Berlin spring forward: a 02:30 daily job runs once, at 03:00 CEST on the short day", () => {
    const fires = simulate("30 2 * * *", "Europe/Berlin", "2025-03-28T12:00:00Z", "2025-03-31T12:00:00Z");
    assert.deepEqual(iso(fires), ["2025-03-29T01:30:00.000Z", "2025-03-30T01:00:00.000Z", "2025-03-31T00:30:00.000Z"]);
    assert.deepEqual(fires.map((d) => local(d, "Europe/Berlin")), ["2025-03-29 02:30:00", "2025-03-30 03:00:00", "2025-03-31 02:30:00"]);
  });

  test("Europe/Berlin fall back: a 02:30 daily job runs once although 02:30 happens twice", () => {
    const fires = simulate("30 2 * * *", "Europe/Berlin", "2025-10-25T12:00:00Z", "2025-10-27T12:00:00Z");
    assert.deepEqual(iso(fires), ["2025-10-26T00:30:00.000Z", "2025-10-27T01:30:00.000Z"]);
  });

  test("Europe/Berlin spring forward: an every-30-minutes job skips the missing hour, no extra fire", () => {
    const fires = simulate("*/30 * * * *", "Europe/Berlin", "2025-03-30T00:00:00Z", "2025-03-30T02:00:00Z");
    // local 01:30 CET, then 03:00 CEST: the nonexistent 02:00 and 02:30 do not fire
    assert.deepEqual(fires.map((d) => local(d, "Europe/Berlin")), ["2025-03-30 01:30:00", "2025-03-30 03:00:00", "2025-03-30 03:30:00", "2025-03-30 04:00:00"]);
    assert.ok(fires.every((d, i) => i === 0 || d.getTime() - fires[i - 1]!.getTime() === 30 * 60_000));
  });

  test("America/New_York spring forward: Harbor's 6-field 02:00 job runs at 03:00 EDT once", () => {
    const fires = simulate("0 0 2 * * *", "America/New_York", "2025-03-08T00:00:00Z", "2025-03-10T12:00:00Z");
    assert.deepEqual(iso(fires), ["2025-03-08T07:00:00.000Z", "2025-03-09T07:00:00.000Z", "2025-03-10T06:00:00.000Z"]);
  });

  test("America/New_York fall back: a 01:30 daily job runs once; a 30-minute job runs on both 01:00 and 01:30", () => {
    const daily = simulate("30 1 * * *", "America/New_York", "2025-11-01T12:00:00Z", "2025-11-03T12:00:00Z");
    assert.deepEqual(iso(daily), ["2025-11-02T05:30:00.000Z", "2025-11-03T06:30:00.000Z"]);
    const interval = simulate("*/30 * * * *", "America/New_York", "2025-11-02T04:45:00Z", "2025-11-02T07:00:00Z");
    assert.deepEqual(iso(interval), ["2025-11-02T05:00:00.000Z", "2025-11-02T05:30:00.000Z", "2025-11-02T06:00:00.000Z", "2025-11-02T06:30:00.000Z", "2025-11-02T07:00:00.000Z"]);
    assert.deepEqual(interval.map((d) => local(d, "America/New_York").slice(11)), ["01:00:00", "01:30:00", "01:00:00", "01:30:00", "02:00:00"]);
  });

  test("coarse ticks (every 7 minutes, within the grace) fire the same slots as fine ones", () => {
    const fine = simulate("*/5 * * * *", "Europe/Berlin", "2025-10-26T00:00:00Z", "2025-10-26T02:06:00Z", 10_000);
    const coarse = simulate("*/5 * * * *", "Europe/Berlin", "2025-10-26T00:00:00Z", "2025-10-26T02:06:00Z", 7 * 60_000, 10 * 60_000);
    assert.deepEqual(iso(coarse), iso(fine));
    assert.equal(fine.length, 25);
  });
});

describe("misfire policies after a 10-minute outage", () => {
  // every minute; last fired slot 12:00; the scheduler comes back at 12:10:30
  const cron = CronExpression.parse("* * * * *", "UTC");
  const plan = (misfire: MisfirePolicy, backfillWindowMs = 3_600_000) =>
    planFires({ cron, misfire, backfillWindowMs, offsetSeconds: 0, nextSlot: new Date("2025-01-01T12:01:00Z") }, new Date("2025-01-01T12:10:30Z"), 60_000);

  test("skip: only the slot due within the grace fires; 9 are reported missed", () => {
    const p = plan("skip");
    assert.deepEqual(iso(p.fires), ["2025-01-01T12:10:00.000Z"]);
    assert.equal(p.missed, 9);
    assert.equal(p.nextSlot?.toISOString(), "2025-01-01T12:11:00.000Z");
  });

  test("run_once: when every due slot is late, the newest fires once", () => {
    const hourly = CronExpression.parse("0 * * * *", "UTC");
    const p = planFires({ cron: hourly, misfire: "run_once", backfillWindowMs: 0, offsetSeconds: 0, nextSlot: new Date("2025-01-01T09:00:00Z") }, new Date("2025-01-01T12:10:00Z"), 60_000);
    assert.deepEqual(iso(p.fires), ["2025-01-01T12:00:00.000Z"]);
    assert.equal(p.missed, 3);
    const everyMinute = plan("run_once");
    assert.deepEqual(iso(everyMinute.fires), ["2025-01-01T12:10:00.000Z"], "an on-time slot fires; late ones do not add a run");
  });

  test("backfill: every missed slot within the window fires, oldest first", () => {
    const p = plan("backfill");
    assert.equal(p.fires.length, 10);
    assert.equal(p.fires[0]!.toISOString(), "2025-01-01T12:01:00.000Z");
    assert.equal(p.missed, 0);
    const windowed = plan("backfill", 5 * 60_000);
    assert.deepEqual(iso(windowed.fires), ["2025-01-01T12:06:00.000Z", "2025-01-01T12:07:00.000Z", "2025-01-01T12:08:00.000Z", "2025-01-01T12:09:00.000Z", "2025-01-01T12:10:00.000Z"]);
    assert.equal(windowed.missed, 5);
  });

  test("a new schedule fires from its next slot on, never for the past", () => {
    const p = planFires({ cron, misfire: "backfill", backfillWindowMs: 3_600_000, offsetSeconds: 0, nextSlot: null }, new Date("2025-01-01T12:10:30Z"), 60_000);
    assert.deepEqual(p.fires, []);
    assert.equal(p.nextSlot?.toISOString(), "2025-01-01T12:11:00.000Z");
  });
});

describe("spread", () => {
  test("offsets are deterministic, within [0, spread), and spread 10,000 daily schedules evenly", () => {
    const spread = 3600;
    const buckets = new Array<number>(60).fill(0);
    for (let id = 1; id <= 10_000; id++) {
      const o = spreadOffsetSeconds(id, spread);
      assert.ok(Number.isInteger(o) && o >= 0 && o < spread, `offset ${o} of ${id}`);
      assert.equal(spreadOffsetSeconds(id, spread), o);
      buckets[Math.floor(o / 60)]!++;
    }
    // 10,000 over 60 minutes: ~167 per minute; no minute holds more than twice that
    assert.ok(Math.max(...buckets) < 2 * (10_000 / 60), `busiest minute ${Math.max(...buckets)}`);
    assert.ok(Math.min(...buckets) > 0.5 * (10_000 / 60), `quietest minute ${Math.min(...buckets)}`);
    assert.equal(spreadOffsetSeconds(42, 0), 0);
  });

  test("a spread schedule fires each slot once, at slot + offset, never before the slot", () => {
    const offset = spreadOffsetSeconds(7, 600);
    assert.ok(offset > 0);
    const cron = CronExpression.parse("0 0 * * *", "UTC");
    let nextSlot: Date | null = null;
    const seen: { slot: Date; at: number }[] = [];
    for (let t = Date.parse("2025-01-01T23:00:00Z"); t <= Date.parse("2025-01-03T01:00:00Z"); t += 1000) {
      const p = planFires({ cron, misfire: "skip", backfillWindowMs: 0, offsetSeconds: offset, nextSlot }, new Date(t), 60_000);
      for (const slot of p.fires) seen.push({ slot, at: t });
      nextSlot = p.nextSlot;
    }
    assert.deepEqual(seen.map((s) => s.slot.toISOString()), ["2025-01-02T00:00:00.000Z", "2025-01-03T00:00:00.000Z"]);
    for (const s of seen) assert.equal(s.at - s.slot.getTime(), offset * 1000);
  });
});

test("invalid patterns are refused with the parser's message", () => {
  assert.throws(() => CronExpression.parse("61 * * * *", "UTC"), /minute/);
  assert.throws(() => CronExpression.parse("0 0 31 2 *", "UTC"), /never fires/);
  assert.throws(() => CronExpression.parse("0 0 * * *", "Mars/Olympus"), /timezone "Mars\/Olympus"/);
  assert.throws(() => CronExpression.parse("* * * * * * * *", "UTC"), /cron/);
});
