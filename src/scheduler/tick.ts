import type pg from "pg";
import { withXactLock } from "../db/advisory_locks.js";
import { enqueuePlanJobs } from "../executions/jobs.js";
import { executionFromColumns, type ExecutionColumns } from "../executions/kind.js";
import { CronCache } from "./cron_expression.js";
import { planFires, type MisfirePolicy } from "./fire_plan.js";
import { spreadOffsetSeconds } from "./spread.js";

/** With overlap = 'queue', at most this many executions wait behind a running one. */
export const MAX_QUEUED_PER_SCHEDULE = 10;

export interface TickOptions {
  /** "now" for this tick; default the database's clock (one clock for every replica) */
  now?: Date;
  /** a due slot older than this is a misfire (see fire_plan.ts) */
  graceMs: number;
  /** schedules examined per tick at most; the caller ticks again at once when `more` */
  batchSize: number;
  cronCache?: CronCache;
}

export interface TickResult {
  /** false when another process held the tick lock (it is the leader for this tick) */
  leader: boolean;
  examined: number;
  /** executions created (enqueued or queued behind a running one) */
  fired: number;
  /** slots dropped by the misfire policy */
  missed: number;
  /** slots dropped by the overlap policy */
  overlapped: number;
  /** schedules marked invalid in this tick */
  invalid: number;
  more: boolean;
  now: Date;
}

interface DueRow {
  id: number;
  kind: string;
  target_id: number;
  cron: string;
  timezone: string;
  misfire: MisfirePolicy;
  backfill_ms: number;
  overlap: "skip" | "queue";
  spread_seconds: number;
  dry_run: boolean;
  next_slot: Date | null;
}

const defaultCache = new CronCache();

/**
 * One scheduler tick. Any number of processes call this; pg_try_advisory_xact_lock makes
 * one of them the leader for the tick (transaction-level: safe behind PgBouncer in
 * transaction mode); the others return at once. In ONE transaction the leader reads the due
 * schedules, inserts their execution rows (UNIQUE (schedule_id, fire_time): a slot fires
 * once) and their plan jobs with one add_jobs call, and advances each schedule's
 * bookkeeping. Either all of it commits or none.
 */
export async function schedulerTick(pool: pg.Pool, opts: TickOptions): Promise<TickResult> {
  const cache = opts.cronCache ?? defaultCache;
  const result = await withXactLock(pool, "schedulerTick", async (client) => {
    const now = opts.now ?? (await client.query<{ now: Date }>("select now()")).rows[0]!.now;
    // schedules_due_idx; rows being edited by a user right now are left for the next tick.
    const { rows } = await client.query<DueRow>(
      `select id, kind, target_id, cron, timezone, misfire,
              extract(epoch from backfill_window) * 1000 as backfill_ms,
              overlap, spread_seconds, dry_run, next_slot
         from ebb.schedules
        where enabled and invalid_reason is null and (next_due_at is null or next_due_at <= $1)
        order by next_due_at nulls first
        limit $2
          for update skip locked`,
      [now, opts.batchSize],
    );
    const out: TickResult = { leader: true, examined: rows.length, fired: 0, missed: 0, overlapped: 0, invalid: 0, more: rows.length >= opts.batchSize, now };
    if (rows.length === 0) return out;

    const invalid: { id: number; reason: string }[] = [];
    const planned: { row: DueRow; fires: Date[]; missed: number; nextSlot: Date | null; nextDueAt: Date | null }[] = [];
    for (const row of rows) {
      const cron = cache.get(row.cron, row.timezone);
      if (cron instanceof Error) {
        invalid.push({ id: row.id, reason: cron.message });
        continue;
      }
      const plan = planFires(
        {
          cron,
          misfire: row.misfire,
          backfillWindowMs: Number(row.backfill_ms),
          offsetSeconds: spreadOffsetSeconds(row.id, row.spread_seconds),
          nextSlot: row.next_slot,
        },
        now,
        opts.graceMs,
      );
      if (plan.nextSlot === null) {
        invalid.push({ id: row.id, reason: `cron ${JSON.stringify(row.cron)} has no fire time after ${now.toISOString()}` });
        continue;
      }
      planned.push({ row, ...plan });
    }

    // Overlap: open executions of the schedules that fire now (executions_open_idx).
    const firing = planned.filter((p) => p.fires.length > 0).map((p) => p.row.id);
    const open = new Map<number, { active: number; waiting: number }>();
    if (firing.length > 0) {
      const { rows: openRows } = await client.query<{ schedule_id: number; active: number; waiting: number }>(
        `select schedule_id,
                count(*) filter (where enqueued)::int as active,
                count(*) filter (where not enqueued)::int as waiting
           from ebb.executions
          where schedule_id = any($1::bigint[]) and status in ('pending', 'running')
          group by schedule_id`,
        [firing],
      );
      for (const r of openRows) open.set(r.schedule_id, r);
    }

    const ins = { scheduleId: [] as number[], kind: [] as string[], target: [] as number[], fire: [] as Date[], dry: [] as boolean[], enqueued: [] as boolean[] };
    const book = { id: [] as number[], nextSlot: [] as (Date | null)[], nextDue: [] as (Date | null)[], lastSlot: [] as (Date | null)[], fired: [] as boolean[], skipped: [] as number[], reason: [] as (string | null)[] };
    for (const p of planned) {
      const o = open.get(p.row.id) ?? { active: 0, waiting: 0 };
      let fires = p.fires;
      let overlapped = 0;
      let reason: string | null = p.missed > 0 ? `${p.missed} slot(s) missed while no scheduler ran (misfire = ${p.row.misfire})` : null;
      const enqueued: boolean[] = [];
      if (fires.length > 0 && p.row.overlap === "skip") {
        if (o.active + o.waiting > 0) {
          overlapped = fires.length;
          fires = [];
          reason = "previous execution still running (overlap = skip)";
        } else if (fires.length > 1) {
          overlapped = fires.length - 1;
          fires = fires.slice(-1);
          reason = `${overlapped} slot(s) would overlap in one tick (overlap = skip): only the newest fired`;
        }
        for (const _ of fires) enqueued.push(true);
      } else if (fires.length > 0) {
        const room = Math.max(0, MAX_QUEUED_PER_SCHEDULE - o.waiting) + (o.active + o.waiting === 0 ? 1 : 0);
        if (fires.length > room) {
          overlapped = fires.length - room;
          fires = fires.slice(-room);
          reason = `${overlapped} slot(s) dropped: more than ${MAX_QUEUED_PER_SCHEDULE} executions queued (overlap = queue)`;
        }
        fires.forEach((_, i) => enqueued.push(i === 0 && o.active + o.waiting === 0));
      }
      fires.forEach((fire, i) => {
        ins.scheduleId.push(p.row.id);
        ins.kind.push(p.row.kind);
        ins.target.push(p.row.target_id);
        ins.fire.push(fire);
        ins.dry.push(p.row.dry_run);
        ins.enqueued.push(enqueued[i]!);
      });
      out.missed += p.missed;
      out.overlapped += overlapped;
      book.id.push(p.row.id);
      book.nextSlot.push(p.nextSlot);
      book.nextDue.push(p.nextDueAt);
      book.lastSlot.push(fires.at(-1) ?? null);
      book.fired.push(fires.length > 0);
      book.skipped.push(p.missed + overlapped);
      book.reason.push(reason);
    }

    if (ins.scheduleId.length > 0) {
      // UNIQUE (schedule_id, fire_time): a slot that already has its execution is not fired again.
      const { rows: created } = await client.query<{ id: number; enqueued: boolean } & ExecutionColumns>(
        `insert into ebb.executions (schedule_id, kind, target_id, fire_time, dry_run, enqueued, trigger)
         select s, k, t, f, d, q, 'schedule'
           from unnest($1::bigint[], $2::text[], $3::bigint[], $4::timestamptz[], $5::boolean[], $6::boolean[]) as x(s, k, t, f, d, q)
         on conflict (schedule_id, fire_time) do nothing
         returning id, enqueued, kind, target_id, schedule_id, fire_time, trigger, dry_run`,
        [ins.scheduleId, ins.kind, ins.target, ins.fire, ins.dry, ins.enqueued],
      );
      out.fired = created.length;
      await enqueuePlanJobs(client, created.filter((c) => c.enqueued).map((c) => executionFromColumns(c.id, c)));
    }
    if (book.id.length > 0) {
      await client.query(
        `update ebb.schedules s
            set next_slot = b.next_slot, next_due_at = b.next_due,
                last_slot = coalesce(b.last_slot, s.last_slot),
                last_fired_at = case when b.fired then $8::timestamptz else s.last_fired_at end,
                skipped_fires = s.skipped_fires + b.skipped,
                last_skip_reason = coalesce(b.reason, s.last_skip_reason)
           from unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[], $5::boolean[], $6::int[], $7::text[])
                as b(id, next_slot, next_due, last_slot, fired, skipped, reason)
          where s.id = b.id`,
        [book.id, book.nextSlot, book.nextDue, book.lastSlot, book.fired, book.skipped, book.reason, now],
      );
    }
    if (invalid.length > 0) {
      await client.query(
        `update ebb.schedules s set invalid_reason = v.reason
           from unnest($1::bigint[], $2::text[]) as v(id, reason) where s.id = v.id`,
        [invalid.map((i) => i.id), invalid.map((i) => i.reason)],
      );
      out.invalid = invalid.length;
    }
    return out;
  }, { wait: false });
  if (!result.locked) return { leader: false, examined: 0, fired: 0, missed: 0, overlapped: 0, invalid: 0, more: false, now: opts.now ?? new Date() };
  return result.value;
}
