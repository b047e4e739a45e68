// Peak resident memory of this process (and optionally of child processes).
//
// Linux keeps the process's high-water mark in /proc/<pid>/status (VmHWM); writing "5" to
// /proc/self/clear_refs resets it, so one process can measure the peak of each phase on its
// own. A 50 ms sampler of process.memoryUsage() adds the heap peak (and a fallback RSS peak
// where /proc is missing). Before a phase the heap is collected so a phase does not inherit
// the previous one's garbage.
import { readFileSync, writeFileSync } from "node:fs";
import v8 from "node:v8";
import vm from "node:vm";

const MiB = 2 ** 20;

function statusField(pid: number | "self", field: "VmHWM" | "VmRSS"): number | null {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Peak RSS in bytes of another process (e.g. a worker child), or null when unreadable. */
export function childPeakRss(pid: number): number | null {
  return statusField(pid, "VmHWM");
}

let gcFn: (() => void) | undefined;
function collectGarbage(): void {
  if (!gcFn) {
    v8.setFlagsFromString("--expose-gc");
    gcFn = vm.runInNewContext("gc") as () => void;
  }
  gcFn();
}

export interface MemoryPeaks {
  /** peak resident set size of the phase, bytes (VmHWM after reset, else sampled) */
  peakRss: number;
  /** peak V8 heap used, sampled every 50 ms, bytes */
  peakHeapUsed: number;
  /** RSS at the start of the phase, bytes */
  startRss: number;
}

export interface MemorySampler {
  stop(): MemoryPeaks;
}

/** Collects garbage, resets the high-water mark, and samples until stop(). */
export function startMemorySampler(intervalMs = 50): MemorySampler {
  collectGarbage();
  let hwmReset = false;
  try {
    writeFileSync("/proc/self/clear_refs", "5");
    hwmReset = true;
  } catch {
    hwmReset = false;
  }
  const startRss = process.memoryUsage().rss;
  let sampledRss = startRss;
  let peakHeapUsed = process.memoryUsage().heapUsed;
  const sample = () => {
    const m = process.memoryUsage();
    if (m.rss > sampledRss) sampledRss = m.rss;
    if (m.heapUsed > peakHeapUsed) peakHeapUsed = m.heapUsed;
  };
  const timer = setInterval(sample, intervalMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      sample();
      const hwm = hwmReset ? statusField("self", "VmHWM") : null;
      return { peakRss: Math.max(hwm ?? 0, sampledRss), peakHeapUsed, startRss };
    },
  };
}

export function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(0)} MiB`;
}
