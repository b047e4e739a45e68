// ebb policy create|import|list|show|enable|disable|delete - policies in ebb.policies, in the
// database every command uses (DATABASE_URL, or the embedded PostgreSQL of --data-dir).
//
//   ebb policy create --file keep.json --registry local [--cron "0 0 3 * * *"] [--timezone Europe/Berlin] [--dry-run] [--disabled]
//   ebb policy import --file harbor-retention.json --registry local [--name n] [--project library] ...
//   ebb policy list [--json]      ebb policy show NAME      ebb policy enable|disable|delete NAME
//
// Files are validated like `ebb evaluate` (parsePolicy / importHarborPolicy) and the cron by
// the scheduler's parser, then PostgreSQL validates the rows again; every refusal is a
// UsageError (exit 2) naming the field.
import { withTransaction } from "../../db/transaction.js";
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import pg from "pg";
import { loadConfig } from "../../config/load.js";
import { resolveCommandDatabase } from "../../db/database.js";
import { createPool } from "../../db/pool.js";
import { createLogger } from "../../log/logger.js";
import { CronExpression } from "../../scheduler/cron_expression.js";
import { importHarborPolicy } from "../../retention/harbor_import.js";
import { PolicyValidationError } from "../../retention/policy_error.js";
import { parsePolicy, type Policy } from "../../retention/policy_schema.js";
import { insertPolicy, listPolicies, readStoredPolicy, toPolicy } from "../../retention/policy_store.js";
import { addConfigOptions, configFlags } from "../config_options.js";
import { UsageError } from "../exit_codes.js";

/** The database flags of every command that reads the database (as `ebb migrate`). */
const POLICY_DB_FLAGS = ["databaseUrl", "dataDir", "embeddedPort", "logLevel"] as const;

export interface PolicyIo {
  out: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new UsageError(`--file ${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new UsageError(`--file ${file}: not valid JSON: ${(err as Error).message}`);
  }
}

/** The database as every command finds it (src/db/database.ts), a pool of 2, closed after `fn`. */
async function withPool<T>(opts: Record<string, unknown>, io: PolicyIo, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const env = { ...io.env };
  if (!env.EBB_LOG_LEVEL) env.EBB_LOG_LEVEL = "warn";
  const config = loadConfig(env, configFlags(opts));
  const database = await resolveCommandDatabase(config, createLogger(config.logLevel));
  const pool = createPool({ connectionString: database.url, max: 2, role: "cli-policy" });
  try {
    return await fn(pool);
  } catch (err) {
    throw dbUsageError(err);
  } finally {
    await pool.end();
    await database.stop();
  }
}

/** The cron as the scheduler will read it: a value out of range or a date that never comes is refused now. */
function checkSchedule(cron: string | null, timezone: string | undefined, source: string): void {
  if (cron === null) return;
  try {
    CronExpression.parse(cron, timezone ?? "UTC");
  } catch (err) {
    const message = (err as Error).message;
    throw new UsageError(`${message.startsWith("timezone ") ? "--timezone" : source}: ${message}`);
  }
}

/** Refusals by PostgreSQL (trigger checks, enums, unique names) are the user's to fix: exit 2. */
function dbUsageError(err: unknown): unknown {
  if (!(err instanceof pg.DatabaseError)) return err;
  if (err.code === "23505" && err.constraint === "policies_name_key") {
    return new UsageError(`policies.name: a policy with this name already exists (${err.detail ?? ""})`);
  }
  if (err.code === "23514" || err.code === "23505" || err.code === "22P02" || err.code === "23503") return new UsageError(err.message);
  return err;
}

/** schedules.invalid_reason of retention schedules the scheduler refused, by policy id. */
async function invalidSchedules(pool: pg.Pool): Promise<Map<number, string>> {
  const { rows } = await pool.query<{ target_id: string; invalid_reason: string }>(
    "select target_id, invalid_reason from ebb.schedules where kind = 'retention' and invalid_reason is not null",
  );
  return new Map(rows.map((r) => [Number(r.target_id), r.invalid_reason]));
}

async function registryId(pool: pg.Pool, name: string): Promise<number> {
  const { rows } = await pool.query<{ id: number }>("select id from ebb.registries where name = $1", [name]);
  if (!rows[0]) throw new UsageError(`--registry ${name}: no such registry in ebb.registries`);
  return rows[0].id;
}

interface CreateOptions {
  file: string;
  registry: string;
  cron?: string;
  timezone?: string;
  dryRun?: boolean;
  disabled?: boolean;
  name?: string;
  project?: string;
}

async function createPolicy(pool: pg.Pool, policy: Policy, cron: string | null, o: CreateOptions): Promise<number> {
  const regId = await registryId(pool, o.registry);
  return withTransaction(pool, (client) =>
    insertPolicy(client, policy, {
      registryId: regId, cron, timezone: o.timezone ?? "UTC", enabled: !o.disabled, dryRun: Boolean(o.dryRun),
    }),
  );
}

function validationUsage(file: string, err: unknown): unknown {
  return err instanceof PolicyValidationError ? new UsageError(`--file ${file}: ${err.message}`) : err;
}

function write(out: NodeJS.WritableStream, text: string): void {
  out.write(text.endsWith("\n") ? text : `${text}\n`);
}

function settingsOptions(cmd: Command): Command {
  return cmd
    .requiredOption("--file <file>", "policy JSON file")
    .requiredOption("--registry <name>", "ebb.registries.name the policy applies to")
    .option("--cron <expr>", "schedule (5 fields, or Harbor's 6 with seconds first); none = manual runs only")
    .option("--timezone <tz>", "IANA time zone of the cron (default UTC)")
    .option("--dry-run", "decide and record, never delete")
    .option("--disabled", "create it disabled (no scheduled runs)");
}

export function registerPolicy(program: Command, io: PolicyIo = { out: process.stdout, env: process.env }): void {
  const policy = program.command("policy").description("retention policies stored in the database (ebb.policies)");

  const create = settingsOptions(policy.command("create").description("create a policy from ebb's policy JSON"));
  addConfigOptions(create, [...POLICY_DB_FLAGS]);
  create.action(async (o: CreateOptions & Record<string, unknown>) => {
    let parsed: Policy;
    try {
      parsed = parsePolicy(await readJson(o.file));
    } catch (err) {
      throw validationUsage(o.file, err);
    }
    checkSchedule(o.cron ?? null, o.timezone, "--cron");
    const id = await withPool(o, io, (pool) => createPolicy(pool, parsed, o.cron ?? null, o));
    write(io.out, `policy ${parsed.name} created (id ${id})`);
  });

  const imp = settingsOptions(policy.command("import").description("create a policy from Harbor's retention policy JSON"))
    .option("--name <name>", "policy name (default harbor-project-<id>)")
    .option("--project <name>", "the Harbor project's name (Harbor's scope is a numeric id)");
  addConfigOptions(imp, [...POLICY_DB_FLAGS]);
  imp.action(async (o: CreateOptions & Record<string, unknown>) => {
    let imported: ReturnType<typeof importHarborPolicy>;
    try {
      imported = importHarborPolicy(await readJson(o.file), { name: o.name, project: o.project });
    } catch (err) {
      throw validationUsage(o.file, err);
    }
    const cron = o.cron ?? imported.cron;
    checkSchedule(cron, o.timezone, o.cron !== undefined ? "--cron" : `--file ${o.file}: trigger.settings.cron`);
    const id = await withPool(o, io, (pool) => createPolicy(pool, imported.policy, cron, o));
    write(io.out, `policy ${imported.policy.name} imported from Harbor (id ${id}${cron ? `, cron ${cron}` : ", manual runs only"})`);
  });

  const list = policy.command("list").description("list policies (and why a schedule is invalid, if one is)").option("--json", "JSON output");
  addConfigOptions(list, [...POLICY_DB_FLAGS]);
  list.action(async (o: Record<string, unknown>) => {
    const [rows, invalid] = await withPool(o, io, (pool) => Promise.all([listPolicies(pool), invalidSchedules(pool)]));
    if (o["json"]) {
      write(io.out, JSON.stringify(rows.map((r) => ({
        id: r.id, name: r.name, registry: r.registry_name, rules: r.rules, cron: r.cron, timezone: r.timezone,
        enabled: r.enabled, dry_run: r.dry_run, deletion_unit: r.deletion_unit, schedule_invalid_reason: invalid.get(Number(r.id)) ?? null,
      }))));
      return;
    }
    write(io.out, ["NAME\tREGISTRY\tRULES\tCRON\tTIMEZONE\tENABLED\tDRY_RUN\tSCHEDULE",
      ...rows.map((r) => [r.name, r.registry_name, r.rules, r.cron ?? "-", r.timezone, r.enabled, r.dry_run,
        r.cron === null ? "-" : invalid.has(Number(r.id)) ? `INVALID: ${invalid.get(Number(r.id))}` : "ok"].join("\t"))].join("\n"));
  });

  const show = policy.command("show").description("show a policy as JSON (with its settings and validation)").argument("<name>");
  addConfigOptions(show, [...POLICY_DB_FLAGS]);
  show.action(async (name: string, o: Record<string, unknown>) => {
    const out = await withPool(o, io, async (pool) => {
      const stored = await readStoredPolicy(pool, name);
      if (!stored) throw new UsageError(`policy ${name}: not found`);
      let problems: string | null = null;
      try {
        toPolicy(stored);
      } catch (err) {
        if (!(err instanceof PolicyValidationError)) throw err;
        problems = err.message;
      }
      return {
        id: stored.row.id, registry: stored.row.registry_name, cron: stored.row.cron, timezone: stored.row.timezone,
        enabled: stored.row.enabled, dry_run: stored.row.dry_run, valid: problems === null, problems,
        policy: stored.json, rule_positions: stored.rulePositions,
      };
    });
    write(io.out, JSON.stringify(out, null, 2));
  });

  for (const [verb, enabled] of [["enable", true], ["disable", false]] as const) {
    const cmd = policy.command(verb).description(`${verb} a policy's scheduled runs`).argument("<name>");
    addConfigOptions(cmd, [...POLICY_DB_FLAGS]);
    cmd.action(async (name: string, o: Record<string, unknown>) => {
      const n = await withPool(o, io, async (pool) => (await pool.query("update ebb.policies set enabled = $2 where name = $1", [name, enabled])).rowCount);
      if (!n) throw new UsageError(`policy ${name}: not found`);
      write(io.out, `policy ${name} ${enabled ? "enabled" : "disabled"}`);
    });
  }

  const del = policy.command("delete").description("delete a policy, its rules and its schedule (history stays)").argument("<name>");
  addConfigOptions(del, [...POLICY_DB_FLAGS]);
  del.action(async (name: string, o: Record<string, unknown>) => {
    const n = await withPool(o, io, async (pool) => (await pool.query("delete from ebb.policies where name = $1", [name])).rowCount);
    if (!n) throw new UsageError(`policy ${name}: not found`);
    write(io.out, `policy ${name} deleted`);
  });
}
