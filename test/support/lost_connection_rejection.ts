// A child program for test/reliability/lost_job_completion.test.ts: runUntilStopped (the
// process around `ebb start`) with a stand-in service, then two unhandled rejections: first
// a lost database connection (what graphile-worker 0.17 leaves behind when PostgreSQL
// restarts under a job's completion), then an ordinary error. Exits with runUntilStopped's code.
import { pino } from "pino";
import type { RunningService } from "../../src/service/service.js";
import { runUntilStopped } from "../../src/service/process_lifecycle.js";

const logger = pino({ level: "info" }, process.stderr); // stderr, as ebb logs
let finish: (code: number) => void = () => {};
const service = {
  done: new Promise<number>((resolve) => (finish = resolve)),
  async stop(reason: string, exitCode = 0) {
    logger.info({ reason }, "stand-in service stopping");
    finish(exitCode);
    return exitCode;
  },
} as unknown as RunningService;
const code = runUntilStopped(service, logger, 1000);
void Promise.reject(Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" }));
setTimeout(() => {
  logger.info("still running after the lost connection");
  void Promise.reject(new Error("a real bug"));
}, 300);
process.exitCode = await code;
