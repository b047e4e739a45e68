/**
 * The test command (`npm test`): runs every test/**\/*.test.ts file with node's test runner,
 * several files at once. Uses DATABASE_URL when set; otherwise boots ONE embedded PostgreSQL
 * for the whole run (each test file still gets its own fresh database). Migrations run once
 * per run, into a template database that every test file's fresh database is cloned from;
 * the template is dropped at the end. After the spec output, every file's wall time and CPU
 * time (with the processes it started) are listed, slowest first.
 *   npm test                      # everything
 *   npm test -- test/db           # only files under test/db
 *   EBB_TEST_CONCURRENCY=1 npm test   # test files at once (default 3)
 *   EBB_TEST_TIMEOUT_MS=...           # hang guard per test (default 15 minutes)
 */
import { spawn } from "node:child_process";
import { chmod, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startEmbedded, type EmbeddedDatabase } from "../src/db/embedded.js";
import { buildTemplate, dropTemplate, TEMPLATE_ENV } from "./support/db.js";
import { freePort } from "./support/ports.js";

async function findTests(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await findTests(p)));
    else if (entry.name.endsWith(".test.ts")) out.push(p);
  }
  return out.sort();
}

const args = process.argv.slice(2);
const roots = args.length ? args : ["test"];
const files = (await Promise.all(roots.map((r) => (r.endsWith(".ts") ? [r] : findTests(r))))).flat();

let embedded: EmbeddedDatabase | undefined;
let embeddedDir: string | undefined;
const env = { ...process.env };
if (!env.DATABASE_URL) {
  embeddedDir = await mkdtemp(path.join(tmpdir(), "ebb-test-pg-"));
  await chmod(embeddedDir, 0o755); // as root the server runs as user postgres
  embedded = await startEmbedded({ dataDir: embeddedDir, port: await freePort() });
  env.DATABASE_URL = embedded.url;
  process.stdout.write(`# tests on embedded PostgreSQL (${embedded.url.replace(/:[^:@]*@/, ":***@")})\n`);
} else {
  process.stdout.write(`# tests on DATABASE_URL ${env.DATABASE_URL.replace(/:[^:@/]*@/, ":***@")}\n`);
}

const t0 = Date.now();
let template: string;
try {
  template = await buildTemplate(env.DATABASE_URL);
} catch (err) {
  process.stderr.write(`# could not build the migrated template database: ${(err as Error).message}\n`);
  if (embedded) await embedded.stop();
  if (embeddedDir) await rm(embeddedDir, { recursive: true, force: true });
  process.exit(1);
}
env[TEMPLATE_ENV] = template;
process.stdout.write(`# migrated template database ${template} in ${Date.now() - t0} ms\n`);

const concurrency = env.EBB_TEST_CONCURRENCY ?? "3";
// One hang guard for every test instead of per-test windows: a test awaits its conditions with
// deadlines of its own, and only a test stuck past this is cut off.
const testTimeoutMs = env.EBB_TEST_TIMEOUT_MS ?? "900000";
const support = (name: string) => fileURLToPath(new URL(`./support/${name}`, import.meta.url));
const statsDir = await mkdtemp(path.join(tmpdir(), "ebb-test-stats-"));
const timesLog = path.join(statsDir, "times.jsonl");
env.EBB_TEST_CPU_LOG = path.join(statsDir, "cpu.jsonl");
const child = spawn(
  process.execPath,
  [
    "--import", "tsx", "--import", support("file_cpu_hook.mjs"),
    "--test", `--test-concurrency=${concurrency}`, `--test-timeout=${testTimeoutMs}`,
    "--test-reporter=spec", "--test-reporter-destination=stdout",
    `--test-reporter=${support("file_times_reporter.mjs")}`, `--test-reporter-destination=${timesLog}`,
    ...files,
  ],
  { stdio: "inherit", env },
);
// Ctrl-C reaches the test runner too (same process group); the cleanup below still runs
process.on("SIGINT", () => {});
process.on("SIGTERM", () => child.kill("SIGTERM"));
const code: number = await new Promise((resolve) => child.on("exit", (c, s) => resolve(c ?? (s ? 1 : 0))));
process.stdout.write(await fileTable(timesLog, env.EBB_TEST_CPU_LOG));
await rm(statsDir, { recursive: true, force: true });
await dropTemplate(template, env.DATABASE_URL).catch((err: Error) => process.stderr.write(`# could not drop ${template}: ${err.message}\n`));
if (embedded) await embedded.stop();
if (embeddedDir) await rm(embeddedDir, { recursive: true, force: true });
process.exit(code);

/** Every test file's wall time and CPU time (its process and the processes it started), slowest first. */
async function fileTable(timesLog: string, cpuLog: string): Promise<string> {
  const lines = async (p: string) => (await readFile(p, "utf8").catch(() => "")).split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const cpu = new Map<string, { cpuMs: number; childrenCpuMs: number }>((await lines(cpuLog)).map((c) => [path.resolve(c.file), c]));
  const rows: { file: string; wallMs: number; passed: boolean }[] = (await lines(timesLog)).sort((a, b) => b.wallMs - a.wallMs);
  if (!rows.length) return "";
  const width = Math.max(...rows.map((r) => path.relative(process.cwd(), r.file).length));
  const secs = (ms: number | undefined) => (ms === undefined ? "?" : (ms / 1000).toFixed(1)).padStart(7);
  let out = `\n# test files by wall time, slowest first${" ".repeat(Math.max(0, width - 37))}   wall s    cpu s  (children)\n`;
  for (const r of rows) {
    const c = cpu.get(path.resolve(r.file));
    out += `# ${r.passed ? " " : "✖"} ${path.relative(process.cwd(), r.file).padEnd(width)} ${secs(r.wallMs)}  ${secs(c?.cpuMs)}  (${secs(c?.childrenCpuMs).trim()})\n`;
  }
  const total = [...cpu.values()].reduce((n, c) => n + c.cpuMs, 0);
  out += `# ${rows.length} files; CPU of the test files and their children: ${(total / 1000).toFixed(0)} s\n`;
  const failed = rows.filter((r) => !r.passed);
  if (failed.length) out += `# failed files: ${failed.map((r) => path.relative(process.cwd(), r.file)).join(", ")}\n`;
  return out;
}
