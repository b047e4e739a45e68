// A refused policy: every problem names its field, e.g.
// "rules[0].params.latestPushedK: is less than zero".

export interface FieldProblem {
  /** dotted path with [i] indexes; "" for the document itself */
  path: string;
  message: string;
}

export class PolicyValidationError extends Error {
  readonly problems: readonly FieldProblem[];
  constructor(problems: readonly FieldProblem[], prefix = "invalid policy") {
    super(`${prefix}: ${problems.map(formatProblem).join("; ")}`);
    this.name = "PolicyValidationError";
    this.problems = problems;
  }
}

export function formatProblem(p: FieldProblem): string {
  return p.path === "" ? p.message : `${p.path}: ${p.message}`;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out;
}

interface ZodIssueLike {
  code: string;
  path: readonly PropertyKey[];
  message: string;
  keys?: readonly string[];
}

/** Turns zod issues into field problems with messages a user can act on. */
export function issuesFromZod(issues: readonly ZodIssueLike[]): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const issue of issues) {
    const path = formatPath(issue.path);
    if (issue.code === "unrecognized_keys" && issue.keys) {
      for (const key of issue.keys) problems.push({ path, message: `unknown field "${key}"` });
      continue;
    }
    let message = issue.message;
    if (issue.code === "invalid_type" && /received undefined/.test(message)) message = "is required";
    else if (issue.code === "invalid_type" && message.startsWith("Invalid input: expected ")) {
      message = `must be ${message.slice("Invalid input: expected ".length)}`;
    }
    problems.push({ path, message });
  }
  return problems;
}
