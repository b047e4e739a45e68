import { setTimeout as sleep } from "node:timers/promises";

/**
 * Poll `fn` until it returns something truthy (returned), or fail after timeoutMs naming
 * what was awaited.
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 20_000,
  everyMs = 100,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Poll `read` until `ok` accepts its value (returned), or fail after timeoutMs naming what was awaited. */
export async function waitUntil<T>(
  what: string,
  read: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs = 20_000,
  everyMs = 100,
): Promise<T> {
  const found = await waitFor(what, async () => {
    const v = await read();
    return ok(v) ? { v } : undefined;
  }, timeoutMs, everyMs);
  return found.v;
}
