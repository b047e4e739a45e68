// How times, durations and counts look in a table cell.

/** 2024-06-01 03:00:12Z (UTC, second precision). */
export function formatTime(d: Date | string | null | undefined): string | null {
  if (d === null || d === undefined) return null;
  const iso = (d instanceof Date ? d : new Date(d)).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}Z`;
}

/** 950ms, 12.3s, 4m05s, 2h03m. */
export function formatDuration(seconds: number | null | undefined): string | null {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return null;
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** "12s ago" style age of a past time, relative to now. */
export function formatAge(d: Date | string | null | undefined, now = Date.now()): string | null {
  if (d === null || d === undefined) return null;
  const seconds = Math.max(0, (now - new Date(d).getTime()) / 1000);
  return `${formatDuration(seconds)} ago`;
}
