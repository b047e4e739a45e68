import assert from "node:assert/strict";
import test from "node:test";
import fc from "fast-check";
import { parseConfigCreated } from "../../src/registry/image_config.js";
import { parseNextLink, resolveNextPage } from "../../src/registry/pagination.js";
import { backoffDelayMs, DEFAULT_RETRY_POLICY, isRetryableStatus, parseRetryAfterMs } from "../../src/registry/retry.js";
import { parseWwwAuthenticate } from "../../src/registry/www_authenticate.js";

test("WWW-Authenticate: bearer params, several challenges, quoted commas", () => {
  assert.deepEqual(
    parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/a:pull,push"'),
    [{ scheme: "bearer", params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/a:pull,push" } }],
  );
  assert.deepEqual(parseWwwAuthenticate(['Basic realm="x"', 'Bearer realm="y", error="insufficient_scope"']), [
    { scheme: "basic", params: { realm: "x" } },
    { scheme: "bearer", params: { realm: "y", error: "insufficient_scope" } },
  ]);
  assert.deepEqual(parseWwwAuthenticate('Basic realm="a \\"q\\" b", Bearer realm=z'), [
    { scheme: "basic", params: { realm: 'a "q" b' } },
    { scheme: "bearer", params: { realm: "z" } },
  ]);
  assert.deepEqual(parseWwwAuthenticate(undefined), []);
});

test("Link rel=next parsing and same-origin resolution", () => {
  assert.equal(parseNextLink('</v2/_catalog?last=b&n=2>; rel="next"'), "/v2/_catalog?last=b&n=2");
  assert.equal(parseNextLink('<https://x/prev>; rel="prev", </v2/t?last=c>; rel=next'), "/v2/t?last=c");
  assert.equal(parseNextLink('<https://x/prev>; rel="prev"'), undefined);
  const current = new URL("http://reg:5000/v2/_catalog?n=2");
  assert.equal(resolveNextPage("/v2/_catalog?last=b&n=2", current, "http://reg:5000", "w").href, "http://reg:5000/v2/_catalog?last=b&n=2");
  assert.throws(() => resolveNextPage("http://reg:5001/v2/_catalog", current, "http://reg:5000", "w"), /another origin http:\/\/reg:5001/);
  assert.throws(() => resolveNextPage("/other", current, "http://reg:5000", "w"), /outside \/v2\//);
  assert.throws(() => resolveNextPage("http://u:p@reg:5000/v2/x", current, "http://reg:5000", "w"), /carrying credentials/);
});

test("backoff grows exponentially, stays within [exp/2, exp] and the cap", () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 30 }), fc.double({ min: 0, max: 0.9999, noNaN: true }), (retry, r) => {
    const p = DEFAULT_RETRY_POLICY;
    const exp = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** (retry - 1));
    const d = backoffDelayMs(p, retry, () => r);
    return d >= Math.floor(exp / 2) && d <= exp;
  }));
  assert.equal(parseRetryAfterMs("3"), 3000);
  assert.ok((parseRetryAfterMs(new Date(Date.now() + 5000).toUTCString(), Date.now()) ?? 0) > 3000);
  assert.equal(parseRetryAfterMs("soon"), undefined);
  assert.deepEqual([429, 500, 502, 503, 504, 501, 404, 401].map(isRetryableStatus), [true, true, true, true, true, false, false, false]);
});

test("config created: RFC 3339 with nanoseconds, missing, zero time, junk", () => {
  const c = (v: unknown) => parseConfigCreated(Buffer.from(JSON.stringify({ created: v })), "cfg");
  assert.equal(c("2024-03-01T12:34:56.123456789Z")?.toISOString(), "2024-03-01T12:34:56.123Z");
  assert.equal(c("2024-03-01T12:34:56+02:00")?.toISOString(), "2024-03-01T10:34:56.000Z");
  assert.equal(c(undefined), null);
  assert.equal(c("0001-01-01T00:00:00Z"), null);
  assert.equal(c("yesterday"), null);
  assert.throws(() => parseConfigCreated(Buffer.from("nope"), "config x"), /config x: malformed image config: not JSON/);
});
