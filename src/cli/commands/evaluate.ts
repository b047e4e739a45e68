// ebb evaluate --policy <file> --candidates <file> [--now <ISO>] [--project <name>]
//
// The pure decision step, no database: reads a policy (ebb JSON or Harbor retention JSON,
// detected by shape) and a JSON array of candidates, prints
// {"decisions":[{repository, digest, tags, action, reason, rule, role, ...}], "repositories":[...]}.
// Bad files or fields throw UsageError (main maps it to a message on stderr and exit code 2).
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { parseCandidates } from "../../retention/candidate.js";
import { compilePolicy } from "../../retention/compiled_policy.js";
import type { Decision, RepositoryEvaluation } from "../../retention/decision.js";
import { evaluate } from "../../retention/evaluate.js";
import { parseAnyPolicy } from "../../retention/harbor_import.js";
import { PolicyValidationError } from "../../retention/policy_error.js";
import type { Policy } from "../../retention/policy_schema.js";
import { UsageError } from "../exit_codes.js";

export interface EvaluateOptions {
  policy: string;
  candidates: string;
  now?: string;
  project?: string;
}

async function readJson(flag: string, file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new UsageError(`${flag} ${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new UsageError(`${flag} ${file}: not valid JSON: ${(err as Error).message}`);
  }
}

function parseNow(value: string | undefined): number {
  if (value === undefined) return Date.now();
  const ms = /^\d{4}-\d{2}-\d{2}T/.test(value) ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(ms)) throw new UsageError(`--now ${value}: not an ISO 8601 time (e.g. 2024-06-01T00:00:00Z)`);
  return ms;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function decisionJson(d: Decision): Record<string, unknown> {
  const out: Record<string, unknown> = {
    repository: d.repository,
    digest: d.digest,
    tags: d.tags,
    action: d.action,
    reason: d.reason,
    rule: d.rule,
    role: d.role,
  };
  if (d.untag_tags) out["untag_tags"] = d.untag_tags;
  if (d.planned_action) out["planned_action"] = d.planned_action;
  out["pushed_at"] = iso(d.pushed_at);
  out["pulled_at"] = iso(d.pulled_at);
  return out;
}

function repositoryJson(r: RepositoryEvaluation): Record<string, unknown> {
  return { repository: r.repository, outcome: r.outcome, reason: r.reason, counts: r.counts };
}

async function write(out: NodeJS.WritableStream, chunk: string): Promise<void> {
  if (!out.write(chunk)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
}

/** The command's work, callable from tests. Throws UsageError for bad input. */
export async function runEvaluate(opts: EvaluateOptions, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const now = parseNow(opts.now);
  const policyJson = await readJson("--policy", opts.policy);
  const candidatesJson = await readJson("--candidates", opts.candidates);
  let policy: Policy;
  try {
    policy = parseAnyPolicy(policyJson, opts.project !== undefined ? { project: opts.project } : {});
  } catch (err) {
    if (err instanceof PolicyValidationError) throw new UsageError(`--policy ${opts.policy}: ${err.message}`);
    throw err;
  }
  let candidates;
  try {
    candidates = parseCandidates(candidatesJson);
  } catch (err) {
    if (err instanceof PolicyValidationError) throw new UsageError(`--candidates ${opts.candidates}: ${err.message}`);
    throw err;
  }
  const result = evaluate(compilePolicy(policy), candidates, now);

  // streamed: a million decisions do not fit one JSON string comfortably
  await write(out, '{"decisions":[');
  const batch = 1000;
  for (let i = 0; i < result.decisions.length; i += batch) {
    const part = result.decisions.slice(i, i + batch).map((d) => JSON.stringify(decisionJson(d)));
    await write(out, (i === 0 ? "\n" : ",\n") + part.join(",\n"));
  }
  await write(out, `\n],"repositories":${JSON.stringify(result.repositories.map(repositoryJson))}}\n`);
}

export function registerEvaluate(program: Command): void {
  program
    .command("evaluate")
    .description("decide what a retention policy keeps and deletes for a list of candidates (no database, no deletes)")
    .requiredOption("--policy <file>", "policy JSON: ebb's own or Harbor's retention policy (detected)")
    .requiredOption("--candidates <file>", 'JSON array of {"repository","digest","tags","pushed_at","pulled_at"}')
    .option("--now <iso>", "evaluation time (default: now)")
    .option("--project <name>", "Harbor policy: the project name its numeric scope refers to (default: every project)")
    .action(async (opts: EvaluateOptions) => {
      await runEvaluate(opts);
    });
}
