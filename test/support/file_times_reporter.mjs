import path from "node:path";

/**
 * A node:test reporter that test/run.ts adds beside `spec`: once the run ends it prints every
 * test file's wall time (process start to exit), slowest first, and which files failed, so a
 * slow or failing file can be found without reading the whole spec output. Plain JavaScript:
 * node loads reporters before tsx's hooks are in place.
 * @param {AsyncIterable<{ type: string, data: { name?: string, file?: string, details?: { duration_ms?: number, passed?: boolean } } }>} source
 */
export default async function* fileTimes(source) {
  const files = [];
  for await (const ev of source) {
    // a test file is itself a test named by its path; nested tests carry their own names
    if (ev.type === "test:complete" && ev.data.file && ev.data.name === ev.data.file) {
      files.push({
        file: path.relative(process.cwd(), ev.data.file),
        ms: ev.data.details?.duration_ms ?? 0,
        passed: ev.data.details?.passed ?? false,
      });
    }
  }
  if (!files.length) return;
  files.sort((a, b) => b.ms - a.ms);
  const width = Math.max(...files.map((f) => f.file.length));
  let out = "\n# test files by wall time, slowest first\n";
  for (const f of files) out += `# ${f.passed ? " " : "✖"} ${f.file.padEnd(width)} ${(f.ms / 1000).toFixed(1).padStart(6)} s\n`;
  const failed = files.filter((f) => !f.passed);
  if (failed.length) out += `# failed files: ${failed.map((f) => f.file).join(", ")}\n`;
  yield out;
}
