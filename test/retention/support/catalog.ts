// Small builders for retention tests: candidates with times relative to a fixed "now".
import type { Candidate, CandidateTag, RepositoryCandidate } from "../../../src/retention/candidate.js";
import { compilePolicy } from "../../../src/retention/compiled_policy.js";
import type { Decision } from "../../../src/retention/decision.js";
import { evaluate } from "../../../src/retention/evaluate.js";
import { evaluateRepository } from "../../../src/retention/evaluate_repository.js";
import { parsePolicy, type PolicyInput } from "../../../src/retention/policy_schema.js";

export const NOW = Date.parse("2024-06-01T00:00:00Z");
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export interface ArtifactSpec {
  tags?: (string | CandidateTag)[];
  pushed?: number | null;
  pulled?: number | null;
  children?: string[];
  subject?: string;
}

export function artifact(digest: string, spec: ArtifactSpec = {}): Candidate {
  const c: Candidate = {
    digest,
    tags: (spec.tags ?? []).map((t) => (typeof t === "string" ? { name: t, pushed_at: null, pulled_at: null } : t)),
    pushed_at: spec.pushed === undefined ? NOW - DAY : spec.pushed,
    pulled_at: spec.pulled === undefined ? null : spec.pulled,
  };
  if (spec.children) c.children = spec.children;
  if (spec.subject) c.subject = spec.subject;
  return c;
}

export function inRepo(repository: string, c: Candidate): RepositoryCandidate {
  return { ...c, repository };
}

export function policy(input: Partial<PolicyInput> & { rules: PolicyInput["rules"] }) {
  return compilePolicy(parsePolicy({ name: "test", ...input }));
}

/** Evaluates one repository, returns decisions by digest plus the evaluation. */
export function decide(input: Partial<PolicyInput> & { rules: PolicyInput["rules"] }, candidates: Candidate[], repository = "proj/app", now = NOW) {
  const evaluation = evaluateRepository(policy(input), repository, candidates, now);
  const byDigest = new Map<string, Decision>(evaluation.decisions.map((d) => [d.digest, d]));
  return { evaluation, byDigest, get: (digest: string) => byDigest.get(digest)! };
}

export function decideMany(input: Partial<PolicyInput> & { rules: PolicyInput["rules"] }, candidates: RepositoryCandidate[], now = NOW) {
  return evaluate(policy(input), candidates, now);
}

export function kept(decisions: readonly Decision[]): string[] {
  return decisions.filter((d) => d.action !== "delete").map((d) => d.digest).sort();
}

export function deleted(decisions: readonly Decision[]): string[] {
  return decisions.filter((d) => d.action === "delete").map((d) => d.digest).sort();
}
