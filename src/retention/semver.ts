// Semantic versions in tags, for latestPerSemverLine: "1.2.3", "v1.2.3", "1.2.3-rc.1", "1.2.3+build".
// Only full MAJOR.MINOR.PATCH (semver.org 2.0.0 grammar, optional leading "v"); "1.2" or
// "latest" are not versions. Precedence follows semver.org (build metadata ignored).

export interface SemVer {
  major: number;
  minor: number;
  patch: number;
  prerelease: readonly string[];
}

const SEMVER =
  /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?$/;

export function parseSemver(tag: string): SemVer | null {
  const m = SEMVER.exec(tag);
  if (!m) return null;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  const patch = Number(m[3]);
  if (!Number.isSafeInteger(major) || !Number.isSafeInteger(minor) || !Number.isSafeInteger(patch)) return null;
  return { major, minor, patch, prerelease: m[4] ? m[4].split(".") : [] };
}

function compareIdentifiers(a: string, b: string): number {
  const an = /^\d+$/.test(a);
  const bn = /^\d+$/.test(b);
  if (an && bn) return Number(a) - Number(b);
  if (an) return -1;
  if (bn) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Negative when a < b, positive when a > b, 0 when of equal precedence. */
export function compareSemver(a: SemVer, b: SemVer): number {
  if (a.major !== b.major) return a.major - b.major;
  if (a.minor !== b.minor) return a.minor - b.minor;
  if (a.patch !== b.patch) return a.patch - b.patch;
  const ap = a.prerelease;
  const bp = b.prerelease;
  if (ap.length === 0 || bp.length === 0) return bp.length - ap.length;
  const n = Math.min(ap.length, bp.length);
  for (let i = 0; i < n; i++) {
    const c = compareIdentifiers(ap[i]!, bp[i]!);
    if (c !== 0) return c;
  }
  return ap.length - bp.length;
}

/** The line a version belongs to: "1" (major) or "1.2" (minor). */
export function semverLine(v: SemVer, line: "major" | "minor"): string {
  return line === "major" ? `${v.major}` : `${v.major}.${v.minor}`;
}
