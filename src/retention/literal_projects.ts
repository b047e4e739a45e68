import type { Policy } from "./policy_schema.js";

const GLOB_SPECIAL = /[*?[\]{}\\!]/;

/**
 * The project names a policy's scope can only ever match, when every scope.projects pattern
 * is a glob without special characters (the common "project: team" case); null when any
 * pattern could match more (a wildcard, a regex) or the scope names no project (all of them).
 * Planning uses it to read only those projects' repositories instead of the whole registry;
 * scopeOf() still decides every repository it reads, so this only narrows the read.
 */
export function literalProjects(policy: Policy): string[] | null {
  const projects = policy.scope.projects;
  if (projects.length === 0) return null;
  if (projects.some((p) => p.kind !== "glob" || GLOB_SPECIAL.test(p.pattern))) return null;
  return [...new Set(projects.map((p) => p.pattern))];
}

/** `team` -> `team/%` for LIKE, with LIKE's own special characters escaped. */
export function projectLikePattern(project: string): string {
  return `${project.replace(/[\\%_]/g, (c) => `\\${c}`)}/%`;
}
