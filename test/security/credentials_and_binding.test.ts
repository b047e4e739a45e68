// Security checks on a real `ebb start` process: registry credentials never leave the process
// (logs at debug level, HTTP API, metrics, database rows, CLI output), also when the registry
// refuses them; and the HTTP server listens on loopback only unless configured otherwise.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { networkInterfaces } from "node:os";
import { test } from "node:test";
import { freshDatabase } from "../support/db.js";
import { runEbb, spawnEbb } from "../support/ebb_process.js";
import { pullManifest, pushImage } from "../support/oci_push.js";
import { registrySkipReason, startRegistry } from "../support/registry.js";
import { waitFor } from "../support/wait_for.js";

const USER = "ebb-robot";
const SECRET = "s3cr3t-Pa55word-never-logged";
const WRONG = "wr0ng-Pa55word-never-logged-either";
const API_TOKEN = "credentials-test-api-token-0123";

function assertNoSecret(text: string, where: string): void {
  for (const s of [SECRET, WRONG]) {
    assert.ok(!text.includes(s), `${where} contains a registry password`);
    for (const b64 of [Buffer.from(`${USER}:${s}`).toString("base64"), Buffer.from(s).toString("base64")]) {
      assert.ok(!text.includes(b64), `${where} contains a registry password (base64)`);
    }
  }
}

test("registry credentials never appear in logs (debug), the HTTP API, metrics, database rows or CLI output - neither when accepted nor when refused", { skip: registrySkipReason("htpasswd") }, async (t) => {
  const reg = await startRegistry(t, { auth: { kind: "htpasswd", username: USER, password: SECRET } });
  const old = await pushImage(reg, "secure/app", { tag: "v1" });
  const newest = await pushImage(reg, "secure/app", { tag: "v2" });
  const db = await freshDatabase();
  const { q } = db;
  const [good] = await q("insert into ebb.registries (name, base_url, auth_kind, credentials_ref) values ('good', $1, 'basic', 'env:EBB_TEST_REG_GOOD') returning id", [reg.url]);
  const [bad] = await q("insert into ebb.registries (name, base_url, auth_kind, credentials_ref) values ('bad', $1, 'basic', 'env:EBB_TEST_REG_BAD') returning id", [reg.url]);
  const ebb = spawnEbb(["start"], {
    DATABASE_URL: db.url, EBB_ROLES: "scheduler,worker,http", EBB_HTTP_PORT: "0", EBB_MIGRATE: "false", EBB_LOG_LEVEL: "debug", EBB_API_TOKEN: API_TOKEN,
    EBB_TEST_REG_GOOD: `${USER}:${SECRET}`, EBB_TEST_REG_BAD: `${USER}:${WRONG}`,
  });
  const ready = await ebb.waitForReady();
  const http = String(ready.http);
  const ended = (id: number) => waitFor(`execution ${id}`, async () =>
    (await q("select * from ebb.executions where id = $1 and status not in ('pending', 'running')", [id]))[0], 60_000, 100);

  // a sync with the right password, one with the wrong one, and a real deletion (DELETE with auth)
  const [{ id: okSync }] = await q("select ebb.trigger_execution('sync', $1, false) as id", [good.id]);
  const [{ id: refusedSync }] = await q("select ebb.trigger_execution('sync', $1, false) as id", [bad.id]);
  assert.equal((await ended(okSync)).status, "success");
  const refused = await ended(refusedSync);
  assert.equal(refused.status, "error", "the registry refused the wrong password");
  const [refusedTask] = await q("select error, details from ebb.tasks where execution_id = $1", [refusedSync]);
  assert.match(JSON.stringify(refusedTask), /401|unauthori[sz]ed|authenticat/i, "the reason says the registry refused the credentials");
  await q(`update ebb.artifacts set pushed_at = now() - interval '1 day' where digest = $1`, [old.digest]);
  const [{ id: policyId }] = await q(`insert into ebb.policies (name, registry_id, scope) values ('p', $1, '{"projects": [{"kind": "glob", "pattern": "secure"}]}') returning id`, [good.id]);
  await q(`insert into ebb.policy_rules (policy_id, template, params, tag_selectors) values ($1, 'latestPushedK', '{"latestPushedK": 1}', '[{"decoration": "matches", "pattern": "**"}]')`, [policyId]);
  const [{ id: deletion }] = await q("select ebb.trigger_execution('retention', $1, false) as id", [policyId]);
  assert.equal((await ended(deletion)).status, "success");
  assert.equal((await pullManifest(reg, "secure/app", old.digest)).status, 404, "the DELETE with credentials worked");
  assert.equal((await pullManifest(reg, "secure/app", newest.digest)).status, 200);

  // everything a user or an operator can read
  for (const path of ["/healthz", "/readyz", "/metrics", "/api/executions", ...[okSync, refusedSync, deletion].flatMap((id) => [`/api/executions/${id}`, `/api/executions/${id}/decisions`])]) {
    const res = await fetch(`${http}${path}`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
    assert.equal(res.status, 200, `GET ${path}`);
    assertNoSecret(await res.text(), `GET ${path}`);
  }
  for (const table of ["registries", "executions", "tasks", "decisions", "repositories", "artifacts", "tags"]) {
    const rows = await q(`select row_to_json(x)::text as j from ebb.${table} x`);
    assertNoSecret(rows.map((r) => r.j).join("\n"), `ebb.${table}`);
  }
  for (const args of [["status", "--json"], ["executions", "list"], ["executions", "show", String(refusedSync), "--json"], ["executions", "show", String(deletion)]]) {
    const out = await runEbb(args, { DATABASE_URL: db.url });
    assert.equal(out.code, 0, `ebb ${args.join(" ")}: ${out.stderr}`);
    assertNoSecret(out.stdout + out.stderr, `ebb ${args.join(" ")}`);
  }
  ebb.child.kill("SIGTERM");
  assert.equal((await ebb.exited).code, 0);
  assert.ok(ebb.logs.some((l) => l.level === 20), "debug lines were logged");
  assertNoSecret(ebb.stderr(), "ebb's log");
});

function nonLoopbackIPv4(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return undefined;
}

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: 2000 });
    s.once("connect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
    s.once("timeout", () => { s.destroy(); resolve(false); });
  });
}

test("the HTTP server listens on loopback only unless EBB_HTTP_HOST says otherwise", async (t) => {
  const external = nonLoopbackIPv4();
  const db = await freshDatabase();
  const start = async (env: Record<string, string>) => {
    const ebb = spawnEbb(["start"], { DATABASE_URL: db.url, EBB_ROLES: "http", EBB_HTTP_PORT: "0", EBB_MIGRATE: "false", ...env });
    const ready = await ebb.waitForReady();
    return { ebb, url: new URL(String(ready.http)) };
  };
  const byDefault = await start({});
  assert.equal(byDefault.url.hostname, "127.0.0.1", "loopback by default");
  const port = Number(byDefault.url.port);
  assert.ok(await reachable("127.0.0.1", port));
  if (external) assert.equal(await reachable(external, port), false, `not reachable on ${external}`);
  else t.diagnostic("no non-loopback IPv4 address on this machine: only the bound address is checked");
  byDefault.ebb.child.kill("SIGTERM");
  await byDefault.ebb.exited;

  // off loopback the API needs a token (test/http/api_auth.test.ts)
  const configured = await start({ EBB_HTTP_HOST: "0.0.0.0", EBB_API_TOKEN: "binding-test-token-0123456789" });
  const port2 = Number(configured.url.port);
  if (external) assert.ok(await reachable(external, port2), `EBB_HTTP_HOST=0.0.0.0 is reachable on ${external}`);
  configured.ebb.child.kill("SIGTERM");
  await configured.ebb.exited;
});
