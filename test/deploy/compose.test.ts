import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { COMPOSE_TEST_TOKENS, composeConfig, composeSkipReason, PROJECT_ROOT } from "../support/docker_compose.js";
import { freePort, REGISTRY_BINARY, registrySkipReason } from "../support/registry.js";

/** One service's block of `docker-compose config` output. */
function service(out: string, name: string): string {
  const start = out.indexOf(`\n  ${name}:\n`);
  assert.ok(start >= 0, `service ${name}`);
  const rest = out.slice(start + 1);
  const end = rest.slice(1).search(/^ {2}\S|^\S/m);
  return end < 0 ? rest : rest.slice(0, end + 1);
}

test("docker-compose.yml is valid for docker-compose and wires the registry's notifications to ebb", { skip: composeSkipReason() }, () => {
  // No Docker engine runs here: `config` parses, merges anchors and validates without one.
  const out = composeConfig();
  for (const name of ["postgres", "registry", "ebb-migrate", "ebb-scheduler", "ebb-worker", "ebb-http"]) {
    assert.match(out, new RegExp(`^  ${name}:$`, "m"), `service ${name}`);
  }
  // every long-running ebb role skips migrations (the migrate job ran them) and uses one database
  assert.equal(out.match(/--no-migrate/g)?.length, 3);
  // the HTTP process gets the tokens from the environment; the registry notifies ebb with the same events token
  const http = service(out, "ebb-http");
  assert.match(http, new RegExp(`EBB_API_TOKEN: ${COMPOSE_TEST_TOKENS.EBB_API_TOKEN}$`, "m"));
  assert.match(http, new RegExp(`EBB_EVENTS_TOKEN: ${COMPOSE_TEST_TOKENS.EBB_EVENTS_TOKEN}$`, "m"));
  assert.match(service(out, "registry").replace(/\s+/g, " "), new RegExp(`Bearer ${COMPOSE_TEST_TOKENS.EBB_EVENTS_TOKEN}`));
  assert.match(service(out, "registry").replace(/\s+/g, " "), /url: "http:\/\/ebb-http:8080\/events\?registry=local"/);
  // no token in the files themselves
  const files = readFileSync(`${PROJECT_ROOT}docker-compose.yml`, "utf8") + readFileSync(`${PROJECT_ROOT}deploy/registry-config.yml`, "utf8");
  assert.doesNotMatch(files, /change-me|EBB_(API|EVENTS|METRICS)_TOKEN: [^$\s]/, "no default secret in the shipped files");
});

test("docker-compose.yml refuses to run without the API and events tokens, naming them", { skip: composeSkipReason() }, () => {
  for (const missing of ["EBB_API_TOKEN", "EBB_EVENTS_TOKEN"]) {
    const env = { ...COMPOSE_TEST_TOKENS, [missing]: "" };
    assert.throws(() => composeConfig(env), (err: Error & { stderr?: string }) => {
      assert.match(String(err.stderr), new RegExp(`set ${missing}`));
      return true;
    });
  }
});

test("the registry takes the notification endpoint and its token from the environment that docker-compose.yml sets", { skip: composeSkipReason() || registrySkipReason(), timeout: 30_000 }, async (t) => {
  const out = composeConfig();
  const m = /REGISTRY_NOTIFICATIONS_ENDPOINTS: '([\s\S]*?)'\n/.exec(service(out, "registry"));
  assert.ok(m, "the endpoint is set through the environment");
  const endpoints = m[1]!.replace(/\n\s+/g, " ");
  // distribution 2.8 with the shipped config file and that environment variable
  const dir = mkdtempSync(path.join(tmpdir(), "ebb-compose-registry-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = readFileSync(`${PROJECT_ROOT}deploy/registry-config.yml`, "utf8")
    .replace("rootdirectory: /var/lib/registry", `rootdirectory: ${dir}/data`)
    .replace("addr: :5000", `addr: 127.0.0.1:${await freePort()}`);
  writeFileSync(`${dir}/config.yml`, config);
  const child = spawn(REGISTRY_BINARY, ["serve", `${dir}/config.yml`], { env: { ...process.env, REGISTRY_NOTIFICATIONS_ENDPOINTS: endpoints }, stdio: ["ignore", "pipe", "pipe"] });
  t.after(() => child.kill("SIGKILL"));
  let log = "";
  const configured = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the registry configured no endpoint:\n${log}`)), 20_000);
    const onData = (c: Buffer) => {
      log += c.toString();
      const line = log.split("\n").find((l) => l.includes("configuring endpoint ebb"));
      if (line) { clearTimeout(timer); resolve(line); }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", () => reject(new Error(`the registry exited:\n${log}`)));
  });
  assert.match(configured, /http:\/\/ebb-http:8080\/events\?registry=local/);
  assert.match(configured, new RegExp(`Authorization:\\[Bearer ${COMPOSE_TEST_TOKENS.EBB_EVENTS_TOKEN}\\]`));
});
