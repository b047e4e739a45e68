/**
 * Parser for WWW-Authenticate challenges (RFC 7235), e.g.
 *   Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"
 * A header may hold several challenges (`Basic realm="x", Bearer realm="y"`), and a response
 * may carry several headers.
 */

export interface Challenge {
  /** lower-case scheme: "basic", "bearer", ... */
  scheme: string;
  /** auth-params with lower-case names */
  params: Record<string, string>;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;

export function parseWwwAuthenticate(headers: string | string[] | undefined): Challenge[] {
  if (headers === undefined) return [];
  const list = Array.isArray(headers) ? headers : [headers];
  return list.flatMap(parseOne);
}

function parseOne(input: string): Challenge[] {
  const challenges: Challenge[] = [];
  let i = 0;
  const skip = (chars: string) => {
    while (i < input.length && chars.includes(input[i]!)) i++;
  };
  const token = (): string | undefined => {
    TOKEN.lastIndex = i;
    const m = TOKEN.exec(input);
    if (!m) return undefined;
    i += m[0].length;
    return m[0];
  };
  const quoted = (): string => {
    // at opening quote
    i++;
    let out = "";
    while (i < input.length && input[i] !== '"') {
      if (input[i] === "\\" && i + 1 < input.length) i++;
      out += input[i];
      i++;
    }
    i++; // closing quote
    return out;
  };

  let current: Challenge | undefined;
  while (i < input.length) {
    skip(" \t,");
    if (i >= input.length) break;
    const start = i;
    const word = token();
    if (word === undefined) break; // garbage: stop, keep what was parsed
    skip(" \t");
    if (input[i] === "=" && current !== undefined) {
      i++;
      skip(" \t");
      const value = input[i] === '"' ? quoted() : (token() ?? "");
      current.params[word.toLowerCase()] = value;
      continue;
    }
    // a new challenge: scheme [token68 | params]
    current = { scheme: word.toLowerCase(), params: {} };
    challenges.push(current);
    // token68 (e.g. "Negotiate abc==") is not used by registries; a bare token after the
    // scheme that is followed by "=" is the first param, handled by the loop.
    void start;
  }
  return challenges;
}
