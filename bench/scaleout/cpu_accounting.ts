// Where the CPU went during a storm, from /proc (Linux): CPU seconds of the ebb processes of one
// database (node processes whose environment names it), of the PostgreSQL backends serving it
// (their process title names the database), of PgBouncer, and of the whole machine. Sampled
// every 500 ms as cumulative totals, so any window can be read afterwards (an exited process
// keeps its last value).
import { readdirSync, readFileSync } from "node:fs";

const TICKS = 100; // USER_HZ on Linux

export type CpuKind = "ebb" | "postgres" | "pgbouncer";

export interface CpuTotals {
  at: number;
  ebb: number;
  postgres: number;
  pgbouncer: number;
  machineBusy: number;
  machineTotal: number;
}

export interface CpuWindow {
  seconds: number;
  /** CPU seconds per second of window (1.0 = one core busy) */
  ebbCores: number;
  postgresCores: number;
  pgbouncerCores: number;
  /** everything else on the machine (other sessions' work) */
  otherCores: number;
  machineBusyFraction: number;
}

export interface CpuAccounting {
  /** CPU used between the samples nearest to fromMs and toMs (ms since epoch) */
  window(fromMs: number, toMs: number): CpuWindow;
  stop(): void;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "latin1");
  } catch {
    return undefined;
  }
}

function ticksOf(pid: number): number | undefined {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime
}

export function startCpuAccounting(database: string): CpuAccounting {
  const kinds = new Map<number, CpuKind | null>();
  const last = new Map<number, number>();
  const samples: CpuTotals[] = [];
  const classify = (pid: number): CpuKind | null => {
    const cmd = read(`/proc/${pid}/cmdline`)?.replaceAll("\0", " ") ?? "";
    if (cmd.startsWith("postgres:") && cmd.includes(` ${database} `)) return "postgres";
    if (/(^|\/)pgbouncer /.test(cmd)) return "pgbouncer";
    if (cmd.includes("node") && (read(`/proc/${pid}/environ`) ?? "").includes(`/${database}\0`)) return "ebb";
    return null;
  };
  const sample = () => {
    for (const entry of readdirSync("/proc")) {
      const pid = Number(entry);
      if (!Number.isInteger(pid)) continue;
      let kind = kinds.get(pid);
      if (kind === undefined) kinds.set(pid, (kind = classify(pid)));
      if (kind === null) continue;
      const t = ticksOf(pid);
      if (t !== undefined) last.set(pid, t);
    }
    const totals: CpuTotals = { at: Date.now(), ebb: 0, postgres: 0, pgbouncer: 0, machineBusy: 0, machineTotal: 0 };
    for (const [pid, t] of last) totals[kinds.get(pid)!] += t / TICKS;
    const cpu = (read("/proc/stat") ?? "cpu 0 0 0 0 0").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    totals.machineTotal = cpu.reduce((a, b) => a + b, 0) / TICKS;
    totals.machineBusy = totals.machineTotal - ((cpu[3] ?? 0) + (cpu[4] ?? 0)) / TICKS; // minus idle, iowait
    samples.push(totals);
  };
  sample();
  const timer = setInterval(sample, 500);
  timer.unref();
  const nearest = (t: number) => samples.reduce((best, s) => (Math.abs(s.at - t) < Math.abs(best.at - t) ? s : best));
  return {
    window(fromMs, toMs) {
      const a = nearest(fromMs);
      const b = nearest(toMs);
      const seconds = Math.max((b.at - a.at) / 1000, 0.001);
      const d = (k: keyof CpuTotals) => b[k] - a[k];
      const busy = d("machineBusy");
      return {
        seconds,
        ebbCores: d("ebb") / seconds,
        postgresCores: d("postgres") / seconds,
        pgbouncerCores: d("pgbouncer") / seconds,
        otherCores: (busy - d("ebb") - d("postgres") - d("pgbouncer")) / seconds,
        machineBusyFraction: busy / Math.max(d("machineTotal"), 0.001),
      };
    },
    stop: () => clearInterval(timer),
  };
}
