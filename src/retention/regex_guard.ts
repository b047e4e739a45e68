// User regular expressions (tag or repository selectors of kind "regex"), made safe.
//
// Two layers, both always on:
// 1. A structural check refuses what can backtrack catastrophically or that the linear
//    engine cannot run: patterns longer than MAX_REGEX_LENGTH, backreferences (\1, \k<x>),
//    lookarounds ((?=, (?!, (?<=, (?<!), and a repeating quantifier (*, +, {n,m} with m > 1)
//    applied to a group that itself contains a quantifier or an alternation, e.g. (a+)+,
//    (a|aa)*, (\w+\s?){3,}. "?" on such a group is allowed ((foo|bar)? is linear).
// 2. At run time V8 falls back to its linear-time engine when a match backtracks too much
//    (see regex_engine.ts), which also covers polynomial cases like .*a.*a.*a.*b.
// Patterns are anchored: the whole tag (or repository path) must match, as in RE2 full match.
import { linearEngineAvailable } from "./regex_engine.js";

export const MAX_REGEX_LENGTH = 256;

export class UnsafeRegexError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnsafeRegexError";
  }
}

interface GroupState {
  hasQuantifier: boolean;
  hasAlternation: boolean;
}

/** Reads a quantifier at `i`; returns [end index, repeats more than once] or null. */
function readQuantifier(p: string, i: number): [number, boolean] | null {
  const ch = p[i];
  if (ch === "*" || ch === "+") return [i + 1, true];
  if (ch === "?") return [i + 1, false];
  if (ch === "{") {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(p.slice(i));
    if (!m) return null;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === "" ? Infinity : Number(m[3]);
    return [i + m[0].length, max > 1];
  }
  return null;
}

/** Returns a description of why the pattern is unsafe, or null when it is acceptable. */
export function regexSafetyProblem(pattern: string): string | null {
  if (pattern.length > MAX_REGEX_LENGTH) return `is longer than ${MAX_REGEX_LENGTH} characters`;
  try {
    new RegExp(`^(?:${pattern})$`);
  } catch (err) {
    return `is not a valid regular expression (${(err as Error).message})`;
  }
  const stack: GroupState[] = [{ hasQuantifier: false, hasAlternation: false }];
  let i = 0;
  // the state of the atom just before position i, if it was a group
  let lastGroup: GroupState | null = null;
  let afterAtom = false;
  while (i < pattern.length) {
    const ch = pattern[i]!;
    const top = stack[stack.length - 1]!;
    if (afterAtom) {
      const q = readQuantifier(pattern, i);
      if (q) {
        const [end, repeats] = q;
        if (repeats && lastGroup && (lastGroup.hasQuantifier || lastGroup.hasAlternation)) {
          return "has a repeated group that contains a quantifier or alternation (catastrophic backtracking)";
        }
        top.hasQuantifier = true;
        i = end;
        if (pattern[i] === "?") i++; // lazy
        afterAtom = false;
        lastGroup = null;
        continue;
      }
    }
    afterAtom = false;
    lastGroup = null;
    if (ch === "\\") {
      const next = pattern[i + 1] ?? "";
      if (/[1-9]/.test(next) || next === "k") return "uses a backreference";
      i += 2;
      afterAtom = true;
      continue;
    }
    if (ch === "[") {
      let j = i + 1;
      if (pattern[j] === "^") j++;
      if (pattern[j] === "]") j++;
      while (j < pattern.length && pattern[j] !== "]") j += pattern[j] === "\\" ? 2 : 1;
      i = j + 1;
      afterAtom = true;
      continue;
    }
    if (ch === "(") {
      if (/^\(\?(=|!|<=|<!)/.test(pattern.slice(i))) return "uses a lookaround";
      stack.push({ hasQuantifier: false, hasAlternation: false });
      const named = /^\(\?(:|<[A-Za-z_$][\w$]*>)/.exec(pattern.slice(i));
      i += named ? named[0].length : 1;
      continue;
    }
    if (ch === ")") {
      const closed = stack.pop()!;
      const parent = stack[stack.length - 1]!;
      if (closed.hasQuantifier) parent.hasQuantifier = true;
      if (closed.hasAlternation) parent.hasAlternation = true;
      i++;
      afterAtom = true;
      lastGroup = closed;
      continue;
    }
    if (ch === "|") {
      top.hasAlternation = true;
      i++;
      continue;
    }
    if (ch === "^" || ch === "$") {
      i++;
      continue;
    }
    i++;
    afterAtom = true;
  }
  return null;
}

/** Compiles an anchored, guarded regex. Throws UnsafeRegexError naming the problem. */
export function compileSafeRegex(pattern: string): RegExp {
  const problem = regexSafetyProblem(pattern);
  if (problem) throw new UnsafeRegexError(problem);
  return new RegExp(`^(?:${pattern})$`);
}

export { linearEngineAvailable };
