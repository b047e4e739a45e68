/**
 * The test command (`npm test`): runs every test/**\/*.test.ts file with node's test runner,
 * several files at once. Uses DATABASE_URL when set; otherwise boots ONE embedded PostgreSQL
 * for the whole run (each test file still gets its own fresh database).
 *   npm test                      # everything
 *   npm test -- test/db           # only files under test/db
 *   EBB_TEST_CONCURRENCY=1 npm test
 */
import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startEmbedded, type EmbeddedDatabase } from "../src/db/embedded.js";
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

const concurrency = env.EBB_TEST_CONCURRENCY ?? "3";
const child = spawn(
  process.execPath,
  ["--import", "tsx", "--test", `--test-concurrency=${concurrency}`, "--test-reporter=spec", ...files],
  { stdio: "inherit", env },
);
const code: number = await new Promise((resolve) => child.on("exit", (c, s) => resolve(c ?? (s ? 1 : 0))));
if (embedded) await embedded.stop();
if (embeddedDir) await rm(embeddedDir, { recursive: true, force: true });
process.exit(code);
