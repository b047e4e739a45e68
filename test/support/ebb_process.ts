import { spawn, type ChildProcess } from "node:child_process";
import { after } from "node:test";
import { fileURLToPath } from "node:url";

export const EBB_BIN = fileURLToPath(new URL("../../bin/ebb.mjs", import.meta.url));

/**
 * How long a child may take to say "ebb ready" (or another awaited log line): generous on
 * purpose, since loading ebb through tsx costs seconds of CPU and a machine busy with other
 * suites can stretch that to a minute. It is a deadline, not a wait: the line is awaited as
 * it comes, and a child that exits first fails the wait at once with its stderr.
 */
export const READY_DEADLINE_MS = 240_000;

export interface EbbProcess {
  child: ChildProcess;
  /** Every JSON log line so far. */
  logs: Record<string, unknown>[];
  stderr(): string;
  /** Resolves with the first log line matching, rejects on exit or timeout. */
  waitForLog(pred: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** The "ebb ready" line (roles, http URL, ...), once the process has started every role. */
  waitForReady(timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

// Every process a test file starts is killed when the file ends, passed or failed: a child
// left running would keep the test file (and the whole run) from ever finishing.
const running = new Set<ChildProcess>();
after(() => {
  for (const child of running) child.kill("SIGKILL");
});

/** The environment of an ebb child: JSON logs, and not marked as a node:test child. */
function childEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...process.env, EBB_LOG_FORMAT: "json", ...env };
  // set by node's test runner for its own children; an ebb process is not a test file
  delete out.NODE_TEST_CONTEXT;
  return out;
}

/** Run `ebb <args>` as a real child process with JSON logs on stderr. */
export function spawnEbb(args: string[], env: NodeJS.ProcessEnv = {}): EbbProcess {
  return spawnNode([EBB_BIN, ...args], env);
}

/** Run a node program (with node flags) as an ebb process: JSON logs parsed from stderr. */
export function spawnNode(argv: string[], env: NodeJS.ProcessEnv = {}): EbbProcess {
  const child = spawn(process.execPath, argv, {
    env: childEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  child.on("exit", () => running.delete(child));
  const logs: Record<string, unknown>[] = [];
  let err = "";
  let buf = "";
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  child.stderr!.on("data", (chunk: Buffer) => {
    err += chunk.toString();
    buf += chunk.toString();
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        logs.push(parsed);
        for (const w of [...waiters]) if (w.pred(parsed)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(parsed); }
      } catch { /* not a log line */ }
    }
  });
  child.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    logs,
    stderr: () => err,
    exited,
    waitForLog,
    waitForReady: (timeoutMs = READY_DEADLINE_MS) => waitForLog((l) => l.msg === "ebb ready", timeoutMs),
  };

  function waitForLog(pred: (line: Record<string, unknown>) => boolean, timeoutMs = READY_DEADLINE_MS): Promise<Record<string, unknown>> {
    const found = logs.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching log line in ${timeoutMs} ms; stderr:\n${err.slice(-4000)}`)), timeoutMs);
      waiters.push({ pred, resolve: (l) => { clearTimeout(timer); resolve(l); } });
      void exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`ebb exited (${code}) first; stderr:\n${err.slice(-4000)}`)); });
    });
  }
}

/** Run `ebb <args>` to completion. */
export async function runEbb(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [EBB_BIN, ...args], {
    env: childEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  return { code, stdout, stderr };
}
