// The HTTP API and metrics behind bearer tokens, on real `ebb start` processes: /api/* needs
// EBB_API_TOKEN, /metrics EBB_METRICS_TOKEN, /healthz and /readyz stay open; ebb refuses to
// serve the API without a token on an address other machines reach; tokens are never logged.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { freshDatabase } from "../support/db.js";
import { runCli } from "../cli/support/run_cli.js";
import { runEbb, spawnEbb } from "../support/ebb_process.js";

const API_TOKEN = "api-token-0123456789abcdef-never-logged";
const METRICS_TOKEN = "metrics-token-0123456789abcdef-never-logged";

const db = await freshDatabase();
const base = { DATABASE_URL: db.url, EBB_ROLES: "http", EBB_HTTP_PORT: "0", EBB_MIGRATE: "false", EBB_LOG_LEVEL: "debug" };

async function startEbb(t: { after(fn: () => unknown): void }, env: Record<string, string>) {
  const ebb = spawnEbb(["start"], { ...base, ...env });
  t.after(() => ebb.child.kill("SIGKILL"));
  const ready = await ebb.waitForLog((l) => l.msg === "ebb ready", 180_000);
  const url = String(ready.http).replace("0.0.0.0", "127.0.0.1");
  const get = (p: string, token?: string) => fetch(`${url}${p}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { ebb, get };
}

test("/api/* and /metrics ask for their bearer tokens; /healthz and /readyz stay open; the tokens are never logged", { timeout: 300_000 }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "ebb-api-token-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, "api-token"), `${API_TOKEN}\n`, { mode: 0o600 });
  // the API token from a file, bound to every address
  const { ebb, get } = await startEbb(t, { EBB_HTTP_HOST: "0.0.0.0", EBB_API_TOKEN_FILE: path.join(dir, "api-token"), EBB_METRICS_TOKEN: METRICS_TOKEN });

  for (const p of ["/healthz", "/readyz"]) assert.equal((await get(p)).status, 200, p);
  for (const p of ["/api/executions", "/api/executions/1", "/api/executions/1/decisions", "/api/executions?limit=5", "/%61pi/executions", "/api//executions"]) {
    for (const token of [undefined, "wrong-token", METRICS_TOKEN, `${API_TOKEN}x`, API_TOKEN.slice(0, -1)]) {
      const res = await get(p, token);
      assert.ok(res.status === 401 || res.status === 404, `${p} with ${token ?? "no token"}: ${res.status}`);
      const body = await res.text();
      if (res.status === 401) {
        assert.match(body, /authorization: missing or wrong bearer token \(EBB_API_TOKEN\)/);
        assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="ebb-api"');
      }
      assert.doesNotMatch(body, /"executions"/, `${p} answered without the token`);
    }
  }
  const list = await get("/api/executions", API_TOKEN);
  assert.equal(list.status, 200);
  assert.deepEqual(await list.json(), { executions: [] });
  assert.equal((await get("/api/executions/1", API_TOKEN)).status, 404, "authorised: the route answers");

  for (const token of [undefined, API_TOKEN, "wrong"]) {
    const res = await get("/metrics", token);
    assert.equal(res.status, 401, `/metrics with ${token ?? "no token"}`);
    assert.match(await res.text(), /EBB_METRICS_TOKEN/);
  }
  const metrics = await get("/metrics", METRICS_TOKEN);
  assert.equal(metrics.status, 200);
  assert.match(await metrics.text(), /ebb_pool_connections/);

  ebb.child.kill("SIGTERM");
  assert.equal((await ebb.exited).code, 0, ebb.stderr());
  for (const secret of [API_TOKEN, METRICS_TOKEN]) assert.ok(!ebb.stderr().includes(secret), "a token is in the log (debug level)");
});

test("without EBB_METRICS_TOKEN /metrics is open; with EBB_API=false (--no-api) there is no /api/* and no token is needed on 0.0.0.0", { timeout: 300_000 }, async (t) => {
  const { ebb, get } = await startEbb(t, { EBB_HTTP_HOST: "0.0.0.0", EBB_API: "false" });
  assert.equal((await get("/metrics")).status, 200);
  assert.equal((await get("/api/executions")).status, 404);
  assert.equal((await get("/healthz")).status, 200);
  ebb.child.kill("SIGTERM");
  assert.equal((await ebb.exited).code, 0);
});

test("ebb start refuses to serve the API without a token on a non-loopback address (exit 2, naming the settings); loopback starts without one, with /api/* closed", { timeout: 600_000 }, async (t) => {
  // the refusals come before ebb touches anything: run in this process (main()), and once as a real process
  const real = await runEbb(["start"], { ...base, EBB_HTTP_HOST: "0.0.0.0" });
  assert.equal(real.code, 2, real.stderr);
  assert.match(real.stderr, /EBB_HTTP_HOST \(--http-host\) is 0\.0\.0\.0, which is not loopback/);
  for (const host of ["0.0.0.0", "::", "192.0.2.10", "ebb.example"]) {
    const r = await runCli(["start"], { ...base, EBB_HTTP_HOST: host });
    assert.equal(r.code, 2, `${host}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`EBB_HTTP_HOST \\(--http-host\\) is ${host.replace(/\./g, "\\.")}, which is not loopback`));
    assert.match(r.stderr, /EBB_API_TOKEN \(--api-token\)/);
    assert.match(r.stderr, /EBB_API_TOKEN_FILE \(--api-token-file\)/);
    assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
  }
  const flag = await runCli(["start", "--http-host", "0.0.0.0"], { ...base });
  assert.equal(flag.code, 2, flag.stderr);
  // bad token settings are refused naming the setting, never echoing the token
  const short = await runCli(["start"], { ...base, EBB_API_TOKEN: "short" });
  assert.equal(short.code, 2);
  assert.match(short.stderr, /EBB_API_TOKEN \(--api-token\): must be at least 16 characters/);
  assert.ok(!short.stderr.includes("short\""), short.stderr);
  const both = await runCli(["start"], { ...base, EBB_API_TOKEN: API_TOKEN, EBB_API_TOKEN_FILE: "/nonexistent" });
  assert.equal(both.code, 2);
  assert.match(both.stderr, /EBB_API_TOKEN_FILE \(--api-token-file\): give the token or a file holding it, not both/);
  const missing = await runCli(["start"], { ...base, EBB_API_TOKEN_FILE: "/nonexistent/ebb-token" });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /EBB_API_TOKEN_FILE \(--api-token-file\): cannot read \/nonexistent\/ebb-token: ENOENT/);
  for (const r of [short, both, missing]) assert.ok(!r.stderr.includes(API_TOKEN));
  // loopback without a token: the quick start runs, and the API stays closed until a token is set
  const { ebb, get } = await startEbb(t, { EBB_HTTP_HOST: "127.0.0.1" });
  const closed = await get("/api/executions", "any-token-0123456789");
  assert.equal(closed.status, 401);
  assert.match(await closed.text(), /the JSON API is closed: ebb has no EBB_API_TOKEN/);
  assert.equal((await get("/healthz")).status, 200);
  ebb.child.kill("SIGTERM");
  assert.equal((await ebb.exited).code, 0);
});
