// Real ebb processes for the benchmarks that measure ebb as deployed: `ebb start --roles ...`
// children (bin/ebb.mjs), each with its own pool, tagged application_name ebb:<roles>. Their
// peak RSS is read from /proc/<pid>/status (VmHWM) while they live.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { childPeakRss } from "./memory_sampler.js";

export const EBB_BIN = fileURLToPath(new URL("../../bin/ebb.mjs", import.meta.url));

export interface EbbChild {
  name: string;
  child: ChildProcess;
  /** highest VmHWM seen so far, bytes */
  peakRss(): number;
  /** resolves when a log line matching pred appears; rejects if the process exits first */
  waitForLog(pred: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** last lines of stderr, for error messages */
  tail(): string;
  stop(): Promise<void>;
}

/** Every ebb child still running, so an interrupted benchmark can stop them (stopAllEbbChildren). */
const running = new Set<ChildProcess>();

/**
 * Stop every ebb child this process started (SIGKILL). bench/run.ts calls it when the
 * benchmark is interrupted (SIGINT, SIGTERM): children left behind kept polling their dropped
 * databases and loaded the machine during every later run.
 */
export function stopAllEbbChildren(): void {
  for (const child of running) child.kill("SIGKILL");
  running.clear();
}

/** `ebb start <args>` as a child; or, with `script`, that TypeScript file run through tsx. */
export function startEbb(name: string, args: string[], env: NodeJS.ProcessEnv, script?: string): EbbChild {
  const argv = script ? ["--import", "tsx", script, ...args] : [EBB_BIN, "start", ...args];
  const child = spawn(process.execPath, argv, {
    env: { ...process.env, EBB_LOG_FORMAT: "json", EBB_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let peak = 0;
  const pid = child.pid!;
  const sample = () => {
    const v = childPeakRss(pid);
    if (v !== null && v > peak) peak = v;
  };
  const timer = setInterval(sample, 200);
  timer.unref();
  const lines: string[] = [];
  const waiters = new Set<{ pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }>();
  let buf = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    buf += chunk.toString();
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      lines.push(line);
      if (lines.length > 200) lines.shift();
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      for (const w of waiters) {
        if (w.pred(parsed)) {
          waiters.delete(w);
          w.resolve(parsed);
        }
      }
    }
  });
  running.add(child);
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  void exited.then(() => running.delete(child));
  void exited.then(() => clearInterval(timer));
  return {
    name,
    child,
    peakRss: () => {
      sample();
      return peak;
    },
    tail: () => lines.slice(-20).join("\n"),
    waitForLog(pred, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no matching log line in ${timeoutMs} ms:\n${lines.slice(-20).join("\n")}`)), timeoutMs);
        const w = {
          pred,
          resolve: (l: Record<string, unknown>) => {
            clearTimeout(timer);
            resolve(l);
          },
        };
        waiters.add(w);
        void exited.then((code) => {
          clearTimeout(timer);
          if (waiters.delete(w)) reject(new Error(`${name} exited (${code}) first:\n${lines.slice(-20).join("\n")}`));
        });
      });
    },
    async stop() {
      sample();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
        await exited;
        clearTimeout(killer);
      }
    },
  };
}
