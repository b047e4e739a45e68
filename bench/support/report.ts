// Tables on the terminal (cli-table3) and the same tables as Markdown for BENCHMARKS.md.
import os from "node:os";
import Table from "cli-table3";
import type { ResultTable } from "./benchmark.js";

export function renderTerminal(t: ResultTable): string {
  const table = new Table({ head: t.head, style: { head: [], border: [] } });
  for (const row of t.rows) table.push(row.map(String));
  const notes = (t.notes ?? []).map((n) => `  ${n}`).join("\n");
  return `\n${t.title}\n${table.toString()}${notes ? `\n${notes}` : ""}\n`;
}

export function renderMarkdown(t: ResultTable): string {
  const esc = (v: string | number) => String(v).replace(/\|/g, "\\|");
  const lines = [
    `#### ${t.title}`,
    "",
    `| ${t.head.map(esc).join(" | ")} |`,
    `|${t.head.map(() => "---").join("|")}|`,
    ...t.rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ];
  if (t.notes?.length) lines.push("", ...t.notes.map((n) => `- ${n}`));
  return `${lines.join("\n")}\n`;
}

export async function machineDescription(serverVersion: string): Promise<string> {
  const cpus = os.cpus();
  return [
    `${cpus.length} x ${cpus[0]?.model.trim() ?? "cpu"}`,
    `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM`,
    `${os.type()} ${os.release()}`,
    `Node ${process.versions.node}`,
    serverVersion,
  ].join(", ");
}

export function fmtSeconds(s: number): string {
  return s < 10 ? s.toFixed(2) : s.toFixed(1);
}

export function fmtRate(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

export function fmtCount(n: number): string {
  return n.toLocaleString("en-US");
}

export function fmtRatio(r: number): string {
  return `${r.toFixed(2)}x`;
}
