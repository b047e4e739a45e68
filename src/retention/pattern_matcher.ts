// A compiled string pattern: doublestar glob (Harbor's) or guarded anchored regex (ebb's).
import { compileDoublestar, isLiteralGlob } from "./doublestar.js";
import { compileSafeRegex } from "./regex_guard.js";

export type PatternKind = "glob" | "regex";

export interface PatternSpec {
  kind: PatternKind;
  pattern: string;
}

export interface PatternMatcher {
  readonly kind: PatternKind;
  readonly pattern: string;
  test(value: string): boolean;
}

class AnyMatcher implements PatternMatcher {
  constructor(readonly kind: PatternKind, readonly pattern: string) {}
  test(): boolean {
    return true;
  }
}

class LiteralMatcher implements PatternMatcher {
  constructor(readonly kind: PatternKind, readonly pattern: string) {}
  test(value: string): boolean {
    return value === this.pattern;
  }
}

class RegexMatcher implements PatternMatcher {
  constructor(readonly kind: PatternKind, readonly pattern: string, private readonly re: RegExp) {}
  test(value: string): boolean {
    return this.re.test(value);
  }
}

/** Compiles once; throws GlobSyntaxError / UnsafeRegexError for bad patterns. */
export function compilePattern(spec: PatternSpec): PatternMatcher {
  if (spec.kind === "glob") {
    // "**" alone matches every string, "/" included (doublestar: any number of components)
    if (spec.pattern === "**") return new AnyMatcher(spec.kind, spec.pattern);
    if (isLiteralGlob(spec.pattern)) return new LiteralMatcher(spec.kind, spec.pattern);
    return new RegexMatcher(spec.kind, spec.pattern, compileDoublestar(spec.pattern));
  }
  return new RegexMatcher(spec.kind, spec.pattern, compileSafeRegex(spec.pattern));
}

/** The reason a pattern cannot be compiled, or null. */
export function patternProblem(spec: PatternSpec): string | null {
  try {
    compilePattern(spec);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}
