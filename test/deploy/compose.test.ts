import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

const root = fileURLToPath(new URL("../../", import.meta.url));

function hasDockerCompose(): boolean {
  try {
    execFileSync("docker-compose", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

test("docker-compose.yml is valid for docker-compose and wires the registry's notifications to ebb", { skip: hasDockerCompose() ? false : "docker-compose (Debian package) not installed" }, () => {
  // No Docker engine runs here: `config` parses, merges anchors and validates without one.
  const out = execFileSync("docker-compose", ["-f", "docker-compose.yml", "config"], { cwd: root, encoding: "utf8" });
  for (const service of ["postgres", "registry", "ebb-migrate", "ebb-scheduler", "ebb-worker", "ebb-http"]) {
    assert.match(out, new RegExp(`^  ${service}:$`, "m"), `service ${service}`);
  }
  // every long-running ebb role skips migrations (the migrate job ran them) and uses one database
  assert.equal(out.match(/--no-migrate/g)?.length, 3);
  const tokens = [...out.matchAll(/EBB_EVENTS_TOKEN: (\S+)/g)].map((m) => m[1]);
  assert.equal(new Set(tokens).size, 1);
  const registryConfig = readFileSync(`${root}deploy/registry-config.yml`, "utf8");
  assert.ok(registryConfig.includes(`Bearer ${tokens[0]}`), "registry notifies ebb with ebb's events token");
  assert.match(registryConfig, /url: http:\/\/ebb-http:8080\/events/);
});
