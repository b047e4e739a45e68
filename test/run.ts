/**
 * The test command (`npm test`): runs every test/**\/*.test.ts file with node's test runner,
 * several files at once. Uses DATABASE_URL when set; otherwise boots ONE embedded PostgreSQL
 * for the whole run (each test file still gets its own fresh database). Migrations run once
 * per run, into a template database that every test file's fresh database is cloned from;
 * the template is dropped at the end. After the spec output, every file's wall time is
 * listed, slowest first.
 *   npm test                      # everything
 *   npm test -- test/db           # only files under test/db
 *   EBB_TEST_CONCURRENCY=1 npm test
 */
import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm, chmod } from "node:fs/promises";
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
const fileTimes = fileURLToPath(new URL("./support/file_times_reporter.mjs", import.meta.url));
const child = spawn(
  process.execPath,
  [
    "--import", "tsx", "--test", `--test-concurrency=${concurrency}`,
    "--test-reporter=spec", "--test-reporter-destination=stdout",
    `--test-reporter=${fileTimes}`, "--test-reporter-destination=stdout",
    ...files,
  ],
  { stdio: "inherit", env },
);
// Ctrl-C reaches the test runner too (same process group); the cleanup below still runs
process.on("SIGINT", () => {});
process.on("SIGTERM", () => child.kill("SIGTERM"));
const code: number = await new Promise((resolve) => child.on("exit", (c, s) => resolve(c ?? (s ? 1 : 0))));
await dropTemplate(template, env.DATABASE_URL).catch((err: Error) => process.stderr.write(`# could not drop ${template}: ${err.message}\n`));
if (embedded) await embedded.stop();
if (embeddedDir) await rm(embeddedDir, { recursive: true, force: true });
process.exit(code);
