// Tables for people (cli-table3). Plain: no colours, so output is the same on a TTY, in a
// pipe and in tests. Scripts use --json instead.
import Table from "cli-table3";

export type Cell = string | number | boolean | null | undefined;

/** A table with a header row. Long cells (errors) are cut at maxCell characters. */
export function renderTable(head: string[], rows: Cell[][], opts: { maxCell?: number } = {}): string {
  const max = opts.maxCell ?? 80;
  const table = new Table({ head, style: { head: [], border: [], compact: true } });
  for (const row of rows) table.push(row.map((c) => cut(cellText(c), max)));
  return `${table.toString()}\n`;
}

/** Two columns, label and value: one record (an execution, the status of the cluster). */
export function renderRecord(pairs: [string, Cell][], opts: { maxCell?: number } = {}): string {
  const max = opts.maxCell ?? 100;
  const table = new Table({ style: { head: [], border: [], compact: true } });
  for (const [label, value] of pairs) table.push({ [label]: cut(cellText(value), max) });
  return `${table.toString()}\n`;
}

export function cellText(c: Cell): string {
  if (c === null || c === undefined) return "-";
  if (typeof c === "boolean") return c ? "yes" : "no";
  return String(c);
}

function cut(s: string, max: number): string {
  const one = s.replace(/\s+/g, " ");
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}
