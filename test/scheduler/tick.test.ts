import assert from "node:assert/strict";
import { test } from "node:test";
import { recover } from "../../src/executions/recovery.js";
import { schedulerTick } from "../../src/scheduler/tick.js";
import { freshDatabase } from "../support/db.js";

const db = await freshDatabase();
const { q } = db;
const tick = (now: string, graceMs = 60_000) => schedulerTick(db.pool, { now: new Date(now), graceMs, batchSize: 5000 });
let target = 0;
async function schedule(cols: Record<string, unknown>): Promise<number> {
  const all = { kind: "sync", target_id: ++target, ...cols };
  const keys = Object.keys(all);
  const rows = await q<{ id: number }>(
    `insert into ebb.schedules (${keys.join(", ")}) values (${keys.map((_, i) => `$${i + 1}`).join(", ")}) returning id`,
    Object.values(all),
  );
  return rows[0]!.id;
}
const executions = (scheduleId: number) =>
  q<{ fire_time: Date; enqueued: boolean; plan_job_id: number | null; status: string }>(
    "select fire_time, enqueued, plan_job_id, status from ebb.executions where schedule_id = $1 order by fire_time", [scheduleId]);

test("the database refuses a malformed cron or an unknown time zone, naming the column", async () => {
  await assert.rejects(schedule({ cron: "0 0 *" }), /schedules\.cron: must have 5 fields .* got 3/);
  await assert.rejects(schedule({ cron: "0 0 * * * ;drop" }), /schedules\.cron: field 6/);
  await assert.rejects(schedule({ cron: "" }), /schedules\.cron: is empty/);
  await assert.rejects(schedule({ cron: "61 * * * *" }), /schedules\.cron: minute \(field 1\): 61 is out of range 0-59/);
  await assert.rejects(schedule({ cron: "99 99 99 99 99" }), /schedules\.cron: minute \(field 1\): 99 is out of range/);
  await assert.rejects(schedule({ cron: "0 0 0 * 13 *" }), /schedules\.cron: month \(field 5\): 13 is out of range 1-12/);
  await assert.rejects(schedule({ cron: "0 0 * * 8" }), /schedules\.cron: weekday \(field 5\): 8 is out of range 0-7/);
  await assert.rejects(schedule({ cron: "*/61 * * * *" }), /schedules\.cron: minute \(field 1\): \*\/61: step 61/);
  await assert.rejects(schedule({ cron: "0 0 31 2 *" }), /schedules\.cron: day of month 31 never falls in month 2/);
  await assert.rejects(schedule({ cron: "0 0 31 4,6,9,11 *" }), /schedules\.cron: day of month 31 never falls in month 4,6,9,11/);
  // what croner accepts and can fire stays accepted
  for (const cron of ["0 0 29 2 *", "0 0 31 2 1", "0 0 L 2 *", "0 0 15W * *", "0 0 * * 5L", "0 0 * * MON#2", "0 0 3 * * *", "0 0 * JAN-MAR MON-FRI", "*/60 * * * *", "@daily"]) {
    await q("delete from ebb.schedules where id = $1", [await schedule({ cron })]);
  }
  await assert.rejects(schedule({ cron: "0 0 * * *", timezone: "Mars/Olympus" }), /schedules\.timezone: Mars\/Olympus is not an IANA time zone/);
  await assert.rejects(schedule({ cron: "0 0 * * *", timezone: "UTC+3" }), /schedules\.timezone/);
  await assert.rejects(schedule({ cron: "0 0 * * *", misfire: "sometimes" }), /misfire_check/);
  await assert.rejects(schedule({ cron: "0 0 * * *", kind: "gardening" }), /schedules\.kind: unknown kind 'gardening' \(known: retention, sync\)/);
  const id = await schedule({ cron: "0 0 * * *", timezone: "Europe/Berlin" });
  await assert.rejects(q("update ebb.schedules set timezone = 'Nowhere/City' where id = $1", [id]), /schedules\.timezone/);
  await q("delete from ebb.schedules where id = $1", [id]);
});

/** A row the triggers would refuse today, as rows written before they checked field ranges. */
async function uncheckedSchedule(cron: string): Promise<number> {
  const client = await db.pool.connect();
  try {
    await client.query("set session_replication_role = replica");
    const { rows } = await client.query<{ id: number }>("insert into ebb.schedules (kind, target_id, cron) values ('sync', $1, $2) returning id", [++target, cron]);
    return rows[0]!.id;
  } finally {
    await client.query("reset session_replication_role");
    client.release();
  }
}

test("a cron croner refuses is marked invalid with its message; the other schedules still fire", async () => {
  const bad = await uncheckedSchedule("61 * * * *");
  const never = await uncheckedSchedule("0 0 30 2 *");
  const good = await schedule({ cron: "* * * * *" });
  await tick("2025-01-01T12:00:30Z");
  const r = await tick("2025-01-01T12:01:01Z");
  assert.equal(r.invalid, 0, "marked on the first tick already");
  const rows = await q<{ id: number; invalid_reason: string | null }>("select id, invalid_reason from ebb.schedules where id = any($1) order by id", [[bad, never, good]]);
  assert.match(rows[0]!.invalid_reason!, /minute/);
  assert.match(rows[1]!.invalid_reason!, /never fires/);
  assert.equal(rows[2]!.invalid_reason, null);
  assert.deepEqual((await executions(good)).map((e) => e.fire_time.toISOString()), ["2025-01-01T12:01:00.000Z"]);
  // fixing the row by SQL clears the mark; the next tick schedules it
  await q("update ebb.schedules set cron = '59 * * * *' where id = $1", [bad]);
  await tick("2025-01-01T12:01:30Z");
  const fixed = await q("select invalid_reason, next_slot from ebb.schedules where id = $1", [bad]);
  assert.equal(fixed[0].invalid_reason, null);
  assert.equal(fixed[0].next_slot.toISOString(), "2025-01-01T12:59:00.000Z");
  await q("update ebb.schedules set enabled = false where id = any($1)", [[bad, never, good]]);
});

test("misfire policies after a 10-minute outage (fake now)", async () => {
  const skip = await schedule({ cron: "* * * * *", misfire: "skip" });
  const once = await schedule({ cron: "*/5 * * * *", misfire: "run_once" });
  const back = await schedule({ cron: "* * * * *", misfire: "backfill", backfill_window: "5 minutes", overlap: "queue" });
  await tick("2025-02-01T09:59:30Z"); // computes next slots
  await tick("2025-02-01T10:00:10Z"); // all three fire the 10:00 slot
  for (const id of [skip, once, back]) assert.equal((await executions(id)).length, 1);
  await q("update ebb.executions set status = 'success' where schedule_id = any($1)", [[skip, once, back]]);
  // ... then no scheduler runs until 10:10:40
  const r = await tick("2025-02-01T10:10:40Z");
  const times = async (id: number) => (await executions(id)).map((e) => e.fire_time.toISOString().slice(11, 16));
  assert.deepEqual(await times(skip), ["10:00", "10:10"], "skip: the on-time slot only");
  assert.deepEqual(await times(once), ["10:00", "10:10"], "run_once: one run for the missed 10:05 and the due 10:10");
  assert.deepEqual(await times(back), ["10:00", "10:06", "10:07", "10:08", "10:09", "10:10"], "backfill within 5 minutes");
  const waiting = (await executions(back)).filter((e) => !e.enqueued);
  assert.equal(waiting.length, 4, "backfilled runs queue behind each other (overlap = queue)");
  assert.ok(r.missed >= 9 + 0 + 4);
  const rows = await q("select id, skipped_fires, last_skip_reason from ebb.schedules where id = any($1) order by id", [[skip, once, back]]);
  assert.equal(rows[0].skipped_fires, 9);
  assert.match(rows[0].last_skip_reason, /missed/);
  await q("update ebb.schedules set enabled = false where id = any($1)", [[skip, once, back]]);
});

test("overlap: skip drops a slot while the previous run is open; queue runs it after", async () => {
  const skip = await schedule({ cron: "* * * * *", overlap: "skip" });
  const queue = await schedule({ cron: "* * * * *", overlap: "queue" });
  await tick("2025-03-01T08:00:30Z");
  await tick("2025-03-01T08:01:01Z");
  await tick("2025-03-01T08:02:01Z"); // the 08:01 executions are still pending
  assert.deepEqual((await executions(skip)).map((e) => e.fire_time.toISOString().slice(11, 16)), ["08:01"]);
  const sk = await q("select skipped_fires, last_skip_reason from ebb.schedules where id = $1", [skip]);
  assert.equal(sk[0].skipped_fires, 1);
  assert.match(sk[0].last_skip_reason, /previous execution still running/);
  const queued = await executions(queue);
  assert.deepEqual(queued.map((e) => [e.fire_time.toISOString().slice(11, 16), e.enqueued, e.plan_job_id !== null]), [["08:01", true, true], ["08:02", false, false]]);
  const jobs = await q("select count(*)::int as n from ebb_worker._private_jobs where payload->>'executionId' = any($1)",
    [(await q("select id::text from ebb.executions where schedule_id = $1", [queue])).map((r) => r.id)]);
  assert.equal(jobs[0].n, 1, "only the first queued execution has a job");
  // the first one ends: the waiting one gets its job
  await q("update ebb.executions set status = 'success', planned = true where schedule_id = $1 and enqueued", [queue]);
  const rec = await recover(db.pool, { deadWorkerTimeoutMs: 60_000 });
  assert.equal(rec.released, 1);
  assert.ok((await executions(queue)).every((e) => e.enqueued && e.plan_job_id !== null));
  await q("update ebb.schedules set enabled = false where id = any($1)", [[skip, queue]]);
});

test("a schedule changed by SQL takes effect at the next tick", async () => {
  const id = await schedule({ cron: "0 0 * * *" });
  await tick("2025-04-01T10:00:00Z");
  assert.equal((await q("select next_slot from ebb.schedules where id = $1", [id]))[0].next_slot.toISOString(), "2025-04-02T00:00:00.000Z");
  await q("update ebb.schedules set cron = '15 10 * * *', timezone = 'Europe/Berlin' where id = $1", [id]);
  await tick("2025-04-01T10:00:01Z");
  assert.equal((await q("select next_slot from ebb.schedules where id = $1", [id]))[0].next_slot.toISOString(), "2025-04-02T08:15:00.000Z");
  await q("update ebb.schedules set enabled = false where id = $1", [id]);
  await tick("2025-04-02T08:16:00Z");
  assert.equal((await executions(id)).length, 0, "a disabled schedule does not fire");
});

test("spread: fires of one slot start between slot and slot + spread, each at its own offset", async () => {
  const ids: number[] = [];
  for (let i = 0; i < 50; i++) ids.push(await schedule({ cron: "0 0 * * *", spread_seconds: 600 }));
  await tick("2025-05-01T23:59:00Z");
  const fires: number[] = [];
  for (let s = 0; s <= 620; s += 10) {
    await tick(new Date(Date.parse("2025-05-02T00:00:00Z") + s * 1000).toISOString());
    const n = (await q("select count(*)::int as n from ebb.executions where schedule_id = any($1)", [ids]))[0].n;
    while (fires.length < n) fires.push(s);
  }
  assert.equal(fires.length, 50, "each schedule fired once");
  assert.ok(new Set(fires).size > 20, "not all at the same second");
  const rows = await q("select count(distinct fire_time)::int as slots, count(*)::int as n from ebb.executions where schedule_id = any($1)", [ids]);
  assert.deepEqual(rows[0], { slots: 1, n: 50 }, "fire_time is the nominal slot");
  await q("update ebb.schedules set enabled = false where id = any($1)", [ids]);
});

test("two ticks at the same moment: one leader; a slot never gets two executions", async () => {
  const ids: number[] = [];
  for (let i = 0; i < 20; i++) ids.push(await schedule({ cron: "* * * * *" }));
  await tick("2025-06-01T00:00:30Z");
  const results = await Promise.all([1, 2, 3, 4].map(() => tick("2025-06-01T00:01:00Z")));
  assert.equal(results.reduce((n, r) => n + r.fired, 0), 20);
  // clear the bookkeeping as a buggy tick might: the unique key still refuses a second row
  await q("update ebb.schedules set next_slot = '2025-06-01T00:01:00Z', next_due_at = '2025-06-01T00:01:00Z' where id = any($1)", [ids]);
  const again = await tick("2025-06-01T00:01:05Z");
  assert.equal(again.fired, 0);
  const n = await q("select count(*)::int as n from ebb.executions where schedule_id = any($1)", [ids]);
  assert.equal(n[0].n, 20);
});
