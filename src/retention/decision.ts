// The evaluator's output: one decision per artifact, and one outcome per repository.

/**
 * retain    - stays (a rule kept it, the graph needs it, or the repository is not touched)
 * protected - stays because a protected tag rule matches one of its tags (always wins)
 * delete    - the manifest is to be deleted (with all its tags)
 * untag     - deletion unit "untag": the tags in `untag_tags` are to be removed, the manifest stays
 * error     - the repository could not be decided; nothing is to be done
 * Only "delete" and "untag" ever lead to a registry call.
 */
export type DecisionAction = "retain" | "protected" | "delete" | "untag" | "error";

/** candidate: ranked by rules; index_child: untagged manifest of an index; referrer: has a subject */
export type DecisionRole = "candidate" | "index_child" | "referrer";

export interface Decision {
  repository: string;
  digest: string;
  tags: string[];
  action: DecisionAction;
  reason: string;
  /** index in policy.rules of the rule that retained it (lowest index wins), else null */
  rule: number | null;
  role: DecisionRole;
  /** action "untag": the tags to remove */
  untag_tags?: string[];
  /** when the repository was aborted by a cap: what would have happened */
  planned_action?: DecisionAction;
  /** last push / pull (max over artifact and tags), ms since epoch, null = never; count rules
   *  rank by the artifact's own push instead (see candidate.ts) */
  pushed_at: number | null;
  pulled_at: number | null;
}

/**
 * evaluated - decisions stand (may include deletes)
 * untouched - no enabled rule selects the repository (or it is out of scope): all retained
 * aborted   - a cap was exceeded: all retained, `reason` says which and by how much
 * error     - bad input (duplicate digest, invalid time) or a failing rule: nothing deleted
 */
export type RepositoryOutcome = "evaluated" | "untouched" | "aborted" | "error";

export interface DecisionCounts {
  total: number;
  retained: number;
  protected: number;
  deleted: number;
  untagged: number;
  errors: number;
}

export interface RepositoryEvaluation {
  repository: string;
  outcome: RepositoryOutcome;
  reason: string | null;
  decisions: Decision[];
  counts: DecisionCounts;
}

export function countDecisions(decisions: readonly Decision[]): DecisionCounts {
  const counts: DecisionCounts = { total: decisions.length, retained: 0, protected: 0, deleted: 0, untagged: 0, errors: 0 };
  for (const d of decisions) {
    if (d.action === "retain") counts.retained++;
    else if (d.action === "protected") counts.protected++;
    else if (d.action === "delete") counts.deleted++;
    else if (d.action === "untag") counts.untagged++;
    else counts.errors++;
  }
  return counts;
}
