import type { Command } from "commander";
import { registerExecutions } from "./commands/executions.js";
import { registerRun } from "./commands/run.js";
import { registerStatus } from "./commands/status.js";
import { registerStop } from "./commands/stop.js";
import { registerSync } from "./commands/sync.js";

/** The operator commands that work on a running ebb through its database. */
export function registerOperatorCommands(program: Command): void {
  registerRun(program);
  registerExecutions(program);
  registerStop(program);
  registerSync(program);
  registerStatus(program);
}
