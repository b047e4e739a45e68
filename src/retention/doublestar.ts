// Doublestar globs, as Harbor matches tags and repositories (github.com/bmatcuk/doublestar v1,
// separator "/"), translated once into an anchored JavaScript RegExp.
//
// Why not picomatch: picomatch is bash/extglob flavoured and differs from doublestar where
// it matters for deletion: "(a|b)", "+(x)", "!(x)", a leading "!" and "[[:alpha:]]" are
// special there and literal in doublestar; "a/**" matches "a" in picomatch but not in
// doublestar. A small translator with exactly doublestar's grammar is easier to trust.
//
// Grammar (doublestar v1):
//   pattern   = component { "/" component }      split on unescaped "/"
//   "**"      as a whole component: zero or more whole path components
//             (last component: one or more, so "a/**" matches "a/x" but not "a")
//   "*"       any run of characters except "/" ("**" inside a component is the same as "*")
//   "?"       one character except "/"
//   "[...]"   class; "^" or "!" first negates (never matches "/"); "a-z" ranges; "\" escapes
//   "{a,b}"   alternatives (each may use the syntax above; no nesting, no "/")
//   "\c"      the character c literally
// Patterns doublestar would reject at match time (unclosed "[" or "{", empty class, dangling
// "\", "-" without a range start) are rejected here at compile time instead.
// ebb also rejects an escaped "/" (it can never match: names are split on "/") and nested
// braces (doublestar v1 does not nest them).
import "./regex_engine.js";

export class GlobSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GlobSyntaxError";
  }
}

const REGEX_SPECIAL = /[.*+?^${}()|[\]\\/-]/g;

function escapeLiteral(text: string): string {
  return text.replace(REGEX_SPECIAL, "\\$&");
}

/** Index of the first `close` in `text` from `start` not preceded by a backslash, or -1. */
function indexUnescaped(text: string, close: string, start: number): number {
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (ch === "\\") {
      i++;
      continue;
    }
    if (ch === close) return i;
  }
  return -1;
}

function splitUnescaped(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === "\\" && i + 1 < text.length) {
      current += ch + text[i + 1]!;
      i++;
      continue;
    }
    if (ch === separator) {
      parts.push(current);
      current = "";
      continue;
    }
    current += ch;
  }
  parts.push(current);
  return parts;
}

function translateClass(body: string): string {
  if (body.length === 0) throw new GlobSyntaxError("empty character class []");
  const chars = Array.from(body);
  let i = 0;
  let negated = false;
  if (chars[0] === "^" || chars[0] === "!") {
    negated = true;
    i = 1;
  }
  if (i >= chars.length) throw new GlobSyntaxError("empty character class");
  let out = "";
  const readChar = (): string => {
    let ch = chars[i]!;
    i++;
    if (ch === "\\") {
      if (i >= chars.length) throw new GlobSyntaxError("dangling \\ in character class");
      ch = chars[i]!;
      i++;
    }
    return ch;
  };
  while (i < chars.length) {
    if (chars[i] === "-") throw new GlobSyntaxError("'-' without a range start in character class");
    const low = readChar();
    let high = low;
    if (i < chars.length && chars[i] === "-") {
      i++;
      if (i >= chars.length) throw new GlobSyntaxError("unfinished range in character class");
      if (chars[i] === "-") throw new GlobSyntaxError("'-' as a range end in character class");
      high = readChar();
    }
    // A reversed range matches nothing in doublestar; JavaScript would throw, so drop it.
    if (low.codePointAt(0)! > high.codePointAt(0)!) continue;
    out += low === high ? escapeLiteral(low) : `${escapeLiteral(low)}-${escapeLiteral(high)}`;
  }
  return negated ? `[^/${out}]` : `[${out}]`;
}

/** One path component (no unescaped "/") to a regex fragment. */
function translateComponent(component: string, insideBraces: boolean): string {
  let out = "";
  for (let i = 0; i < component.length; i++) {
    const ch = component[i]!;
    if (ch === "\\") {
      if (i + 1 >= component.length) throw new GlobSyntaxError("pattern ends with a dangling \\");
      const next = component[i + 1]!;
      if (next === "/") throw new GlobSyntaxError("an escaped '/' can never match");
      out += escapeLiteral(next);
      i++;
    } else if (ch === "*") {
      while (component[i + 1] === "*") i++;
      out += "[^/]*";
    } else if (ch === "?") {
      out += "[^/]";
    } else if (ch === "[") {
      const end = indexUnescaped(component, "]", i + 1);
      if (end < 0) throw new GlobSyntaxError("unclosed [ in pattern");
      out += translateClass(component.slice(i + 1, end));
      i = end;
    } else if (ch === "{") {
      if (insideBraces) throw new GlobSyntaxError("nested { } are not supported");
      const end = indexUnescaped(component, "}", i + 1);
      if (end < 0) throw new GlobSyntaxError("unclosed { in pattern");
      const options = splitUnescaped(component.slice(i + 1, end), ",");
      out += `(?:${options.map((o) => translateComponent(o, true)).join("|")})`;
      i = end;
    } else {
      out += escapeLiteral(ch);
    }
  }
  return out;
}

/** The regex source (unanchored) for a doublestar pattern. Throws GlobSyntaxError. */
export function doublestarToRegexSource(pattern: string): string {
  const raw = splitUnescaped(pattern, "/");
  // consecutive "**" components mean the same as one
  const components: string[] = [];
  for (const c of raw) {
    if (c === "**" && components[components.length - 1] === "**") continue;
    components.push(c);
  }
  let out = "";
  let needSlash = false;
  for (let i = 0; i < components.length; i++) {
    const comp = components[i]!;
    const last = i === components.length - 1;
    if (comp === "**") {
      if (last) {
        out += i === 0 ? "[^]*" : "/[^]*";
      } else {
        out += (i === 0 ? "" : "/") + "(?:[^/]*/)*";
      }
      needSlash = false;
      continue;
    }
    out += (needSlash ? "/" : "") + translateComponent(comp, false);
    needSlash = true;
  }
  return out;
}

export function compileDoublestar(pattern: string): RegExp {
  return new RegExp(`^(?:${doublestarToRegexSource(pattern)})$`);
}

/** True when the pattern has no glob syntax at all (then it only matches itself). */
export function isLiteralGlob(pattern: string): boolean {
  return !/[*?[{\\]/.test(pattern);
}
