import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { composeConfig, composeSkipReason, PROJECT_ROOT } from "../support/docker_compose.js";

test("docker-compose.yml is valid for docker-compose and wires the registry's notifications to ebb", { skip: composeSkipReason() }, () => {
  // No Docker engine runs here: `config` parses, merges anchors and validates without one.
  const out = composeConfig();
  for (const service of ["postgres", "registry", "ebb-migrate", "ebb-scheduler", "ebb-worker", "ebb-http"]) {
    assert.match(out, new RegExp(`^  ${service}:$`, "m"), `service ${service}`);
  }
  // every long-running ebb role skips migrations (the migrate job ran them) and uses one database
  assert.equal(out.match(/--no-migrate/g)?.length, 3);
  const tokens = [...out.matchAll(/EBB_EVENTS_TOKEN: (\S+)/g)].map((m) => m[1]);
  assert.equal(new Set(tokens).size, 1);
  const registryConfig = readFileSync(`${PROJECT_ROOT}deploy/registry-config.yml`, "utf8");
  assert.ok(registryConfig.includes(`Bearer ${tokens[0]}`), "registry notifies ebb with ebb's events token");
  assert.match(registryConfig, /url: http:\/\/ebb-http:8080\/events/);
});
