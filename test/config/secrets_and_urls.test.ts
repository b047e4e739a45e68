// Settings that hold secrets or reach the network: a malformed DATABASE_URL is refused naming
// the variable and never echoed; tokens come from the environment, a flag or a file; which
// HTTP addresses count as loopback.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { assertHttpExposure, ConfigError, loadConfig } from "../../src/config/load.js";
import { isLoopbackHost } from "../../src/config/schema.js";

test("a malformed DATABASE_URL names the variable and never repeats the URL", () => {
  const cases: [string, RegExp][] = [
    ["postgres://x:99999/db", /is not a valid URL/],
    ["postgres://u:pw-s3cret@[::1/ebb", /is not a valid URL/],
    ["postgres://u:pw-s3cret@db:0/ebb", /port must be between 1 and 65535/],
    ["postgres://u:%zzpw-s3cret@db/ebb", /malformed percent-encoding/],
    ["mysql://u:pw-s3cret@db/ebb", /must be a postgres:\/\/ URL/],
  ];
  for (const [url, reason] of cases) {
    assert.throws(() => loadConfig({ DATABASE_URL: url }), (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /DATABASE_URL \(--database-url\): /);
      assert.match(err.message, reason, url);
      assert.ok(!err.message.includes("pw-s3cret") && !err.message.includes("99999"), err.message);
      return true;
    });
  }
  for (const url of ["postgres://u:p%40ss@db:5432/ebb", "postgresql://db/ebb?sslmode=require", "postgres://u@[::1]:5432/ebb", "postgres:///ebb"]) {
    assert.equal(loadConfig({ DATABASE_URL: url }).databaseUrl, url);
  }
});

test("tokens from the environment, a flag or a file; refused naming the setting", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "ebb-tokens-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "token");
  await writeFile(file, "from-a-file-0123456789\n");
  assert.equal(loadConfig({ EBB_API_TOKEN_FILE: file }).apiToken, "from-a-file-0123456789", "the trailing newline is not part of the token");
  assert.equal(loadConfig({ EBB_METRICS_TOKEN_FILE: file }).metricsToken, "from-a-file-0123456789");
  assert.equal(loadConfig({ EBB_EVENTS_TOKEN_FILE: file }).eventsToken, "from-a-file-0123456789");
  assert.equal(loadConfig({}, { apiToken: "from-a-flag-0123456789" }).apiToken, "from-a-flag-0123456789");
  await writeFile(path.join(dir, "short"), "short\n");
  assert.throws(() => loadConfig({ EBB_API_TOKEN_FILE: path.join(dir, "short") }), /EBB_API_TOKEN_FILE \(--api-token-file\): the token in .* must be at least 16 characters/);
  assert.throws(() => loadConfig({ EBB_METRICS_TOKEN: "has a space 0123456789" }), /EBB_METRICS_TOKEN \(--metrics-token\): must not contain white space \(got "<redacted>"\)/);
  assert.throws(() => loadConfig({ EBB_EVENTS_TOKEN: "x", EBB_EVENTS_TOKEN_FILE: file }), /EBB_EVENTS_TOKEN_FILE \(--events-token-file\): give the token or a file holding it, not both/);
  assert.throws(() => loadConfig({ EBB_API_TOKEN_FILE: path.join(dir, "none") }), /cannot read .*none: ENOENT/);
});

test("loopback addresses, and the start check that needs a token off loopback", () => {
  for (const h of ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]", "::ffff:127.0.0.1"]) assert.equal(isLoopbackHost(h), true, h);
  for (const h of ["0.0.0.0", "::", "10.0.0.5", "ebb.internal", "127.0.0.1.example.com", "::ffff:10.0.0.1"]) assert.equal(isLoopbackHost(h), false, h);
  assert.throws(() => assertHttpExposure(loadConfig({ EBB_HTTP_HOST: "0.0.0.0" })), /EBB_HTTP_HOST \(--http-host\) is 0\.0\.0\.0, which is not loopback/);
  assert.doesNotThrow(() => assertHttpExposure(loadConfig({ EBB_HTTP_HOST: "0.0.0.0", EBB_API_TOKEN: "0123456789abcdef" })));
  assert.doesNotThrow(() => assertHttpExposure(loadConfig({ EBB_HTTP_HOST: "0.0.0.0", EBB_API: "false" })));
  assert.doesNotThrow(() => assertHttpExposure(loadConfig({ EBB_HTTP_HOST: "0.0.0.0", EBB_ROLES: "worker" })), "no HTTP role, no HTTP");
});
