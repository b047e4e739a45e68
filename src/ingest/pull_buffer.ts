/**
 * The in-memory coalescing buffer of pulls: one entry per (registry, repository, digest,
 * tag) holding the latest pull time seen. A thousand pulls of one image are one entry.
 *
 * Bounded: entries waiting plus entries being flushed never exceed `max`. When full, a pull
 * of a key already held still coalesces; a batch with new keys is refused as a whole (the
 * caller answers 503 so the registry retries it - nothing acknowledged is dropped).
 */
export interface PullEntry {
  registryId: number;
  repository: string;
  digest: string;
  /** null for a pull by digest */
  tag: string | null;
  /** latest pull, ms since epoch */
  at: number;
}

export type PullKey = string;

export function pullKey(e: Omit<PullEntry, "at">): PullKey {
  return `${e.registryId}\u0000${e.repository}\u0000${e.digest}\u0000${e.tag ?? ""}`;
}

export class PullBuffer {
  private pending = new Map<PullKey, PullEntry>();
  private inFlight: Map<PullKey, PullEntry> | undefined;

  constructor(readonly max: number) {}

  /** Entries waiting for a flush (not counting a flush in progress). */
  get size(): number {
    return this.pending.size;
  }

  /** Entries held in memory: waiting plus being flushed (<= max). */
  get held(): number {
    return this.pending.size + (this.inFlight?.size ?? 0);
  }

  /** Whether offer(batch) would accept: its new keys fit under max. */
  fits(batch: readonly PullEntry[]): boolean {
    const fresh = new Set<PullKey>();
    for (const e of batch) {
      const k = pullKey(e);
      if (!this.pending.has(k)) fresh.add(k);
    }
    return fresh.size === 0 || this.held + fresh.size <= this.max;
  }

  /**
   * Add a batch of pulls all-or-nothing. Returns false (and adds nothing) when its new
   * keys do not fit.
   */
  offer(batch: readonly PullEntry[]): boolean {
    if (!this.fits(batch)) return false;
    for (const e of batch) this.merge(pullKey(e), e);
    return true;
  }

  /** Take the waiting entries for a flush; they stay counted until settle(). */
  take(): PullEntry[] {
    if (this.inFlight) throw new Error("a flush is already in progress");
    this.inFlight = this.pending;
    this.pending = new Map();
    return [...this.inFlight.values()];
  }

  /** End a flush: written = the taken entries are durable; otherwise they go back. */
  settle(written: boolean): void {
    const taken = this.inFlight;
    this.inFlight = undefined;
    if (written || !taken) return;
    // Merging back only shrinks: every taken key was counted in `held`.
    for (const [k, e] of taken) this.merge(k, e);
  }

  private merge(k: PullKey, e: PullEntry): void {
    const cur = this.pending.get(k);
    if (cur === undefined) this.pending.set(k, { ...e });
    else if (e.at > cur.at) cur.at = e.at;
  }
}
