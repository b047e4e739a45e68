// `ebb <args>` run in this process through main() (the function bin/ebb.mjs calls), with
// stdout and stderr captured and the environment overridden for the call. Same parsing,
// same commands, same exit codes as the binary, without a process start per case (each
// costs seconds on a loaded 2-core machine). The real binary is exercised too (runEbb).
// Run test files with `node --test` (reporting then goes as binary chunks, see below).
import { main } from "../../../src/cli/main.js";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

let queue: Promise<unknown> = Promise.resolve();

export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  // one at a time: stdout/stderr and the environment are process-wide
  const run = queue.then(() => runNow(args, env));
  queue = run.catch(() => {});
  return run;
}

async function runNow(args: string[], env: Record<string, string>): Promise<CliResult> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, { EBB_LOG_FORMAT: "json", ...env });
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  let stdout = "";
  let stderr = "";
  // ebb writes strings; the test runner's own reporting (binary chunks on stdout, written
  // whenever a subtest ends) passes through untouched
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) =>
    typeof chunk === "string" ? ((stdout += chunk), true) : out(chunk, ...rest)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) =>
    typeof chunk === "string" ? ((stderr += chunk), true) : err(chunk, ...rest)) as typeof process.stderr.write;
  process.exitCode = undefined;
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    process.exitCode = undefined;
    process.stdout.write = out;
    process.stderr.write = err;
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
