/** ebb's exit codes: 0 ok, 1 failure, 2 usage (bad flags, bad files, bad configuration). */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** An error the user can fix by changing what they typed or the file they gave: exit 2. */
export class UsageError extends Error {
  override name = "UsageError";
}
