import type { TaskList } from "graphile-worker";
import type { AppContext } from "../service/context.js";

/**
 * Every graphile-worker task ebb runs, by identifier. Each part of ebb contributes its own
 * tasks here (retention, sync, history pruning); the handlers close over the shared context.
 */
export function buildTaskList(_ctx: AppContext): TaskList {
  return {};
}
