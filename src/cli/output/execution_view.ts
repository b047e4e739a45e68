// Executions as tables: `ebb executions list`, `ebb executions show`, the summary of
// `ebb run --wait`.
import type { ExecutionDetail, ExecutionItem } from "../../executions/execution_queries.js";
import { formatDuration, formatTime } from "./cell_format.js";
import { renderRecord, renderTable, type Cell } from "./table.js";

function target(e: ExecutionItem): string {
  return e.target_name ?? `#${e.target_id} (deleted)`;
}

function tasksCell(e: ExecutionItem): string {
  const done = e.tasks - e.open_tasks;
  return `${done}/${e.tasks}${e.planned ? "" : "+"}`;
}

export function renderExecutionList(items: ExecutionItem[]): string {
  if (items.length === 0) return "no executions\n";
  return renderTable(
    ["id", "kind", "target", "trigger", "status", "dry run", "started", "duration", "tasks", "total", "retained", "deleted", "errors"],
    items.map((e): Cell[] => [
      e.id, e.kind, target(e), e.trigger, e.stop_requested && e.status === "running" ? "running (stopping)" : e.status,
      e.dry_run, formatTime(e.started_at ?? e.created_at), formatDuration(e.duration_seconds), tasksCell(e),
      e.total, e.retained, e.dry_run ? `${e.deleted} (dry run)` : e.deleted, e.errors,
    ]),
  );
}

export function renderExecutionDetail(d: ExecutionDetail): string {
  const e = d.execution;
  const out: string[] = [];
  const dryRun = e.dry_run || d.retention?.dry_run === true;
  const pairs: [string, Cell][] = [
    ["execution", e.id],
    ["kind", e.kind],
    [e.kind === "retention" ? "policy" : e.kind === "sync" ? "registry" : "target", `${target(e)} (id ${e.target_id})`],
    ["trigger", e.schedule_id !== null ? `${e.trigger} (schedule ${e.schedule_id})` : e.trigger],
    ["status", e.status],
    ["dry run", dryRun],
    ["stop requested", e.stop_requested],
    ["fire time", formatTime(e.fire_time)],
    ["started", formatTime(e.started_at)],
    ["ended", formatTime(e.ended_at)],
    ["duration", formatDuration(e.duration_seconds)],
    ["tasks", `${e.tasks} (${Object.entries(d.task_counts).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`).join(", ") || "none"})${e.planned ? "" : ", still planning"}`],
    ["artifacts", `${e.total} total, ${e.retained} retained, ${e.deleted} ${dryRun ? "would be deleted (dry run)" : "deleted"}, ${e.errors} errors`],
  ];
  if (e.error) pairs.push(["error", e.error]);
  out.push(renderRecord(pairs, { maxCell: 200 }));
  if (d.decisions.length > 0) {
    out.push("decisions\n");
    out.push(renderTable(["action", "outcome", "count"], d.decisions.map((c) => [c.action, c.outcome, c.count])));
  }
  if (d.tasks.length > 0) {
    const shown = d.tasks.length < e.tasks ? ` (${d.tasks.length} of ${e.tasks}: problems first)` : "";
    out.push(`tasks${shown}\n`);
    out.push(renderTable(
      ["id", "key", "status", "attempts", "duration", "total", "retained", "deleted", "errors", "error"],
      d.tasks.map((t) => [
        t.id, t.key, t.status, t.attempts,
        t.started_at ? formatDuration(((t.ended_at ?? new Date()).getTime() - t.started_at.getTime()) / 1000) : null,
        t.total, t.retained, t.deleted, t.errors, t.error,
      ]),
    ));
  }
  return out.join("");
}
