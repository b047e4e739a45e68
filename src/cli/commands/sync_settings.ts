// ebb sync schedule <registry> [--cron EXPR [--timezone TZ] [--spread-seconds N] [--misfire M]] [--off] [--json]
// ebb sync schedules [--json]
// ebb sync repositories <registry> [NAME_OR_PATTERN...] [--catalog] [--json]
//
// Scheduled syncs are ebb.schedules rows of kind 'sync' (target_id = registry id), fired by
// the same scheduler as retention schedules; these commands write and show them. The
// repository list (registries.repositories) is what a sync reads on a registry that serves
// no /v2/_catalog. Every refusal names the option or argument and exits 2.
// `ebb sync` itself has --json and the database options: given after a subcommand they are
// parsed by `ebb sync`, so the actions read optsWithGlobals().
import { InvalidArgumentError, type Command } from "commander";
import pg from "pg";
import { findRegistry } from "../../executions/execution_queries.js";
import { compileDoublestar, isLiteralGlob } from "../../retention/doublestar.js";
import { assertRepository } from "../../registry/reference.js";
import { CronExpression } from "../../scheduler/cron_expression.js";
import { addDbOptions, withCliContext } from "../cli_session.js";
import { EXIT, UsageError } from "../exit_codes.js";
import { oneOf, wholeNumber } from "../option_parsers.js";
import { renderJson, writeOut } from "../output/json_output.js";
import { renderRecord, renderTable } from "../output/table.js";

interface ScheduleRow {
  registry: string;
  schedule_id: number;
  cron: string;
  timezone: string;
  enabled: boolean;
  spread_seconds: number;
  misfire: string;
  overlap: string;
  next_due_at: Date | null;
  last_fired_at: Date | null;
  invalid_reason: string | null;
}

// ebb.sync_schedules (a view over ebb.schedules of kind sync)
const SCHEDULE_COLUMNS = "registry, schedule_id, cron, timezone, enabled, spread_seconds, misfire, overlap, next_due_at, last_fired_at, invalid_reason";

function scheduleRecord(row: ScheduleRow): string {
  return renderRecord([
    ["registry", row.registry], ["schedule id", row.schedule_id], ["cron", row.cron], ["timezone", row.timezone],
    ["enabled", row.enabled], ["spread seconds", row.spread_seconds], ["misfire", row.misfire], ["overlap", row.overlap],
    ["next due", row.next_due_at?.toISOString() ?? "(next scheduler tick)"], ["last fired", row.last_fired_at?.toISOString() ?? null],
    ...(row.invalid_reason ? [["invalid", row.invalid_reason] as [string, string]] : []),
  ], { maxCell: 200 });
}

/** PostgreSQL's refusals of the row (trigger checks naming the column) are the user's to fix. */
function usageFromDatabase(err: unknown): unknown {
  if (err instanceof pg.DatabaseError && ["23514", "23505", "22P02", "23503"].includes(err.code ?? "")) return new UsageError(err.message);
  return err;
}

async function registryOrUsage(pool: pg.Pool, ref: string): Promise<{ id: number; name: string }> {
  const registry = await findRegistry(pool, ref);
  if (!registry) throw new UsageError(`registry ${ref}: no such registry in ebb.registries`);
  return registry;
}

const repositoryEntry = (value: string): string => {
  const entry = value.trim();
  if (isLiteralGlob(entry)) {
    try {
      assertRepository(entry);
    } catch (err) {
      throw new InvalidArgumentError(`${JSON.stringify(entry)}: ${(err as Error).message} (lowercase names such as team/app, or patterns such as team/*).`);
    }
    return entry;
  }
  try {
    compileDoublestar(entry);
  } catch (err) {
    throw new InvalidArgumentError(`${JSON.stringify(entry)}: not a valid pattern: ${(err as Error).message}.`);
  }
  return entry;
};

export function registerSyncSettings(sync: Command): void {
  const schedule = sync
    .command("schedule")
    .description("set, show or remove a registry's scheduled sync (an ebb.schedules row of kind 'sync', fired by the ebb scheduler)")
    .argument("<registry>", "registry name (or id) in ebb.registries")
    .option("--cron <expr>", "when to sync: 5 fields (minute first), 6 (seconds first) or a nickname such as @hourly")
    .option("--timezone <tz>", "IANA time zone of the cron (default UTC, or the schedule's current one)")
    .option("--spread-seconds <n>", "spread the fires of one cron slot over this many seconds (default 0)", wholeNumber(0, 86_400))
    .option("--misfire <mode>", "after downtime: skip the missed slots, run_once for all of them, or backfill them (default run_once)",
      oneOf(["skip", "run_once", "backfill"] as const))
    .option("--off", "remove the schedule (manual syncs only)")
    .option("--json", "print JSON");
  addDbOptions(schedule);
  schedule.action(async (registryRef: string, _local: unknown, command: Command) => {
    const opts = command.optsWithGlobals<Record<string, unknown> & {
      cron?: string; timezone?: string; spreadSeconds?: number; misfire?: string; off?: boolean; json?: boolean;
    }>();
    if (opts.off && (opts.cron !== undefined || opts.timezone !== undefined || opts.spreadSeconds !== undefined || opts.misfire !== undefined)) {
      throw new UsageError("--off: cannot be combined with --cron, --timezone, --spread-seconds or --misfire");
    }
    const tuning = opts.timezone !== undefined || opts.spreadSeconds !== undefined || opts.misfire !== undefined;
    process.exitCode = await withCliContext(opts, async (ctx) => {
      const registry = await registryOrUsage(ctx.pool, registryRef);
      const current = async () => (await ctx.pool.query<ScheduleRow>(
        `select ${SCHEDULE_COLUMNS} from ebb.sync_schedules where registry = $1`, [registry.name])).rows[0];
      if (opts.off) {
        // schedules (kind, target_id) unique
        const r = await ctx.pool.query("delete from ebb.schedules where kind = 'sync' and target_id = $1", [registry.id]);
        const removed = (r.rowCount ?? 0) > 0;
        await writeOut(opts.json ? renderJson({ registry: registry.name, schedule: null, removed })
          : `${removed ? "removed the sync schedule of" : "no sync schedule to remove for"} registry ${registry.name}\n`);
        return EXIT.ok;
      }
      if (opts.cron === undefined && tuning) {
        const existing = await current();
        if (!existing) throw new UsageError(`--cron: registry ${registry.name} has no sync schedule yet; give --cron to create one`);
      }
      if (opts.cron !== undefined || tuning) {
        const existing = await current();
        const cron = opts.cron ?? existing!.cron;
        const timezone = opts.timezone ?? existing?.timezone ?? "UTC";
        try {
          CronExpression.parse(cron, timezone);
        } catch (err) {
          const msg = (err as Error).message;
          throw new UsageError(`${msg.startsWith("timezone") ? "--timezone" : "--cron"}: ${msg}`);
        }
        try {
          await ctx.pool.query(
            `insert into ebb.schedules (kind, target_id, cron, timezone, spread_seconds, misfire)
             values ('sync', $1, $2, $3, coalesce($4, 0), coalesce($5, 'run_once'))
             on conflict (kind, target_id) do update
               set cron = excluded.cron, timezone = excluded.timezone,
                   spread_seconds = coalesce($4, ebb.schedules.spread_seconds),
                   misfire = coalesce($5, ebb.schedules.misfire)`,
            [registry.id, cron, timezone, opts.spreadSeconds ?? null, opts.misfire ?? null],
          );
        } catch (err) {
          throw usageFromDatabase(err);
        }
      }
      const row = await current();
      if (opts.json) await writeOut(renderJson({ registry: registry.name, schedule: row ?? null }));
      else await writeOut(row ? scheduleRecord(row) : `registry ${registry.name} has no sync schedule (ebb sync schedule ${registry.name} --cron '0 * * * *' sets one)\n`);
      return EXIT.ok;
    });
  });

  const schedules = sync
    .command("schedules")
    .description("list the scheduled syncs of every registry")
    .option("--json", "print JSON");
  addDbOptions(schedules);
  schedules.action(async (_local: unknown, command: Command) => {
    const opts = command.optsWithGlobals<Record<string, unknown> & { json?: boolean }>();
    process.exitCode = await withCliContext(opts, async (ctx) => {
      const { rows } = await ctx.pool.query<ScheduleRow>(`select ${SCHEDULE_COLUMNS} from ebb.sync_schedules order by registry`);
      if (opts.json) {
        await writeOut(renderJson(rows));
      } else if (rows.length === 0) {
        await writeOut("no scheduled syncs (ebb sync schedule <registry> --cron '0 * * * *' sets one)\n");
      } else {
        await writeOut(renderTable(
          ["registry", "cron", "timezone", "enabled", "spread s", "misfire", "next due", "last fired", "invalid"],
          rows.map((r) => [r.registry, r.cron, r.timezone, r.enabled, r.spread_seconds, r.misfire,
            r.next_due_at?.toISOString() ?? "", r.last_fired_at?.toISOString() ?? "", r.invalid_reason ?? ""]),
        ));
      }
      return EXIT.ok;
    });
  });

  const repositories = sync
    .command("repositories")
    .description("set or show the repositories a sync reads on a registry that serves no /v2/_catalog (names, or patterns over the repositories ebb knows)")
    .argument("<registry>", "registry name (or id) in ebb.registries")
    .argument("[entries...]", "repository names (team/app) or doublestar patterns (team/*, **); replaces the list", (v: string, prev: string[] = []) => [...prev, repositoryEntry(v)])
    .option("--catalog", "forget the list: list repositories with /v2/_catalog again")
    .option("--json", "print JSON");
  addDbOptions(repositories);
  repositories.action(async (registryRef: string, entries: string[] | undefined, _local: unknown, command: Command) => {
    const opts = command.optsWithGlobals<Record<string, unknown> & { catalog?: boolean; json?: boolean }>();
    const list = entries ?? [];
    if (opts.catalog && list.length > 0) throw new UsageError("--catalog: cannot be combined with repository names or patterns");
    process.exitCode = await withCliContext(opts, async (ctx) => {
      const registry = await registryOrUsage(ctx.pool, registryRef);
      if (opts.catalog || list.length > 0) {
        try {
          await ctx.pool.query("update ebb.registries set repositories = $2 where id = $1", [registry.id, opts.catalog ? null : [...new Set(list)]]);
        } catch (err) {
          throw usageFromDatabase(err);
        }
      }
      const { rows } = await ctx.pool.query<{ repositories: string[] | null }>("select repositories from ebb.registries where id = $1", [registry.id]);
      const current = rows[0]?.repositories ?? null;
      if (opts.json) await writeOut(renderJson({ registry: registry.name, repositories: current }));
      else if (current === null) await writeOut(`registry ${registry.name}: repositories listed with /v2/_catalog\n`);
      else await writeOut(`registry ${registry.name}: syncs ${current.join(" ")}\n`);
      return EXIT.ok;
    });
  });
}
