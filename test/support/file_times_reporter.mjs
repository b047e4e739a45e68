/**
 * A node:test reporter that test/run.ts adds beside `spec`, writing to a file of its own: one
 * JSON line per test file with its wall time (process start to exit) and whether it passed.
 * test/run.ts prints them as a table at the end of the run. Plain JavaScript: node loads
 * reporters before tsx's hooks are in place.
 * @param {AsyncIterable<{ type: string, data: { name?: string, file?: string, details?: { duration_ms?: number, passed?: boolean } } }>} source
 */
export default async function* fileTimes(source) {
  for await (const ev of source) {
    // a test file is itself a test named by its path; nested tests carry their own names
    if (ev.type === "test:complete" && ev.data.file && ev.data.name === ev.data.file) {
      yield JSON.stringify({ file: ev.data.file, wallMs: ev.data.details?.duration_ms ?? 0, passed: ev.data.details?.passed ?? false }) + "\n";
    }
  }
}
