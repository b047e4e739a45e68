/**
 * Deterministic spread: the fires of one cron slot are offset by hash(schedule id) mod
 * spread seconds, so 10,000 daily policies start over the spread window instead of all at
 * 00:00:00, and each policy starts at the same offset every day.
 * The hash is 32-bit FNV-1a over the decimal id, then a murmur3 finalizer (good mixing of
 * consecutive ids).
 */
export function spreadOffsetSeconds(scheduleId: number, spreadSeconds: number): number {
  if (spreadSeconds <= 0) return 0;
  let h = 0x811c9dc5;
  for (const ch of String(scheduleId)) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % spreadSeconds;
}
