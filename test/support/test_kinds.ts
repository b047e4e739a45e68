// Spawning real ebb processes with the test kind. The kind itself lives in test_sleep_kind.ts,
// which the child program imports: a child must not load node:test (ebb_process.ts does),
// or the test runner's harness would take over its uncaught errors and exit codes.
import { fileURLToPath } from "node:url";
import { spawnNode, type EbbProcess } from "./ebb_process.js";

export { installTestKind, TEST_KIND_SQL, testSleepKind } from "./test_sleep_kind.js";

const ENTRY = fileURLToPath(new URL("./ebb_with_test_kinds.ts", import.meta.url));

export type TestEbb = EbbProcess;

/** A real ebb process (`ebb start` with the test kind registered), configured by env vars. */
export function spawnTestEbb(env: NodeJS.ProcessEnv): TestEbb {
  return spawnNode(["--import", "tsx", ENTRY], { EBB_ROLES: "scheduler,worker", ...env });
}
