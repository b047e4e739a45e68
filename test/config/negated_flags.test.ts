import assert from "node:assert/strict";
import { test } from "node:test";
import { Command } from "commander";
import { addConfigOptions, configFlags } from "../../src/cli/config_options.js";
import { loadConfig } from "../../src/config/load.js";

// A setting whose flag is `--no-...` (migrate, worker async commit): commander gives it the
// value true when the flag is absent; that implied default must not override the env var.
const parse = (argv: string[]) => {
  const cmd = addConfigOptions(new Command().exitOverride(), ["migrate", "workerAsyncCommit"]);
  cmd.parse(argv, { from: "user" });
  return configFlags(cmd.opts());
};

test("--no-worker-async-commit and EBB_WORKER_ASYNC_COMMIT: the flag turns it off, an absent flag leaves the env var in charge, a bad value names the variable", () => {
  assert.equal(loadConfig({}).workerAsyncCommit, true, "on by default");
  assert.equal(loadConfig({}, parse(["--no-worker-async-commit"])).workerAsyncCommit, false);
  assert.equal(loadConfig({ EBB_WORKER_ASYNC_COMMIT: "false" }, parse([])).workerAsyncCommit, false, "no flag: the env var decides");
  assert.equal(loadConfig({ EBB_MIGRATE: "false" }, parse([])).migrate, false);
  assert.throws(() => loadConfig({ EBB_WORKER_ASYNC_COMMIT: "sometimes" }), /EBB_WORKER_ASYNC_COMMIT/);
});
