/**
 * Loaded (--import) into every test file's process by test/run.ts: when the file's process
 * exits it appends one JSON line to $EBB_TEST_CPU_LOG with the CPU time it used, its own and
 * that of the child processes it started and reaped (ebb processes, registries, private
 * PostgreSQL servers), so the run can say which files cost the machine most.
 */
import { appendFileSync, readFileSync } from "node:fs";

const log = process.env.EBB_TEST_CPU_LOG;
const file = process.argv[1];
if (log && file && /\.test\.ts$/.test(file)) {
  process.on("exit", () => {
    try {
      // /proc/self/stat fields 14-17: utime, stime, cutime, cstime in clock ticks (100 a second)
      const fields = readFileSync("/proc/self/stat", "utf8").replace(/^.*\) /, "").split(" ");
      const ticks = [11, 12, 13, 14].map((i) => Number(fields[i]));
      const own = (ticks[0] + ticks[1]) * 10;
      const children = (ticks[2] + ticks[3]) * 10;
      appendFileSync(log, JSON.stringify({ file, cpuMs: own + children, childrenCpuMs: children }) + "\n");
    } catch {
      // not Linux, or the log is gone: the run goes on without CPU figures
    }
  });
}
