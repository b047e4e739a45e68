// Convenience over many repositories (the evaluate CLI, tests, benchmarks): group candidates by
// repository (first-seen order), evaluate each repository on its own.
import type { Candidate, RepositoryCandidate } from "./candidate.js";
import type { CompiledPolicy } from "./compiled_policy.js";
import type { Decision, RepositoryEvaluation } from "./decision.js";
import { evaluateRepository } from "./evaluate_repository.js";

export interface EvaluationResult {
  repositories: RepositoryEvaluation[];
  /** every decision, repository by repository, in input order within a repository */
  decisions: Decision[];
}

export function groupByRepository(candidates: readonly RepositoryCandidate[]): Map<string, Candidate[]> {
  const groups = new Map<string, Candidate[]>();
  for (const c of candidates) {
    let group = groups.get(c.repository);
    if (!group) groups.set(c.repository, (group = []));
    group.push(c);
  }
  return groups;
}

export function evaluate(
  compiled: CompiledPolicy,
  candidates: readonly RepositoryCandidate[],
  now: number | Date,
): EvaluationResult {
  const repositories: RepositoryEvaluation[] = [];
  const decisions: Decision[] = [];
  for (const [repository, group] of groupByRepository(candidates)) {
    const evaluation = evaluateRepository(compiled, repository, group, now);
    repositories.push(evaluation);
    for (const d of evaluation.decisions) decisions.push(d);
  }
  return { repositories, decisions };
}
