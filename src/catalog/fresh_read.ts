/**
 * What a retention task decides on: its repository as the registry holds it now.
 *
 * freshRead: sync's own one-repository path, inside the task - what the catalog knows
 * (readKnownRepository), the registry read over HTTP with no database connection held
 * (readRepositorySnapshot: every tag by HEAD, the manifests of digests the catalog does not
 * know or knows only from push events, known untagged digests confirmed by HEAD), and the
 * catalog brought up to date in one transaction (writeRepositorySnapshot). A manifest the
 * catalog has read before is never fetched again. Any registry error is an IncompleteRead:
 * the caller refuses the repository; the catalog is left as it was.
 *
 * candidatesOfRead: the catalog's candidates (times, media types, graph edges) restricted to
 * what that read found, with the read's tags: an artifact or tag that reached the catalog
 * from elsewhere after the read (a push event, an older sync writing late) is not decided on.
 *
 * recheckTags: right before the deletion phase, the tag list again and every tag by HEAD;
 * a digest to be deleted that gained a tag since the decision (a new tag, or one moved onto
 * it), or that a newly tagged index or referrer points at, is skipped with the reason.
 */
import type pg from "pg";
import type { RegistryClient } from "../registry/client.js";
import { readKnownRepository, writeRepositorySnapshot, type WriteCounts } from "../registry/sync_catalog_sql.js";
import { readRepositorySnapshot, type RepositorySnapshot } from "../registry/sync_snapshot.js";
import type { Candidate } from "../retention/candidate.js";

/** The registry could not be read completely: nothing may be decided on it. */
export class IncompleteRead extends Error {
  override name = "IncompleteRead";
}

export interface FreshRead {
  snapshot: RepositorySnapshot;
  counts: WriteCounts;
  /** every digest the read found in the registry (tagged, reachable from an index, or confirmed by HEAD) */
  digests: Set<string>;
  /** HTTP read time, ms (without the catalog statements) */
  registryMs: number;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function freshRead(pool: pg.Pool, client: RegistryClient, registryId: number, repository: string): Promise<FreshRead> {
  const known = await readKnownRepository(pool, registryId, repository);
  const started = performance.now();
  let snapshot: RepositorySnapshot;
  try {
    snapshot = await readRepositorySnapshot(client, repository, known);
  } catch (err) {
    throw new IncompleteRead(message(err));
  }
  const registryMs = performance.now() - started;
  const counts = await writeRepositorySnapshot(pool, registryId, snapshot);
  const digests = new Set<string>([
    ...snapshot.tags.values(), ...snapshot.newArtifacts.keys(), ...snapshot.inspectedArtifacts.keys(), ...snapshot.stillPresent,
  ]);
  return { snapshot, counts, digests, registryMs };
}

/**
 * The candidates to decide on: those of the read, each with the tags the read found on it
 * (a tag's push/pull times kept from the catalog when the catalog has it on the same digest).
 * Returns the digests the read tagged that the catalog no longer holds (removed meanwhile by
 * another writer): the caller must not decide without them (an index among them would leave
 * its children unprotected).
 */
export function candidatesOfRead(candidates: readonly Candidate[], read: FreshRead): { candidates: Candidate[]; missing: string[] } {
  const tagsOf = new Map<string, string[]>();
  for (const [tag, digest] of read.snapshot.tags) {
    const list = tagsOf.get(digest);
    if (list) list.push(tag);
    else tagsOf.set(digest, [tag]);
  }
  const out: Candidate[] = [];
  const seen = new Set<string>();
  for (const c of candidates) {
    if (!read.digests.has(c.digest)) continue;
    seen.add(c.digest);
    const catalogTags = new Map(c.tags.map((t) => [t.name, t]));
    const names = (tagsOf.get(c.digest) ?? []).sort();
    out.push({ ...c, tags: names.map((name) => catalogTags.get(name) ?? { name, pushed_at: null, pulled_at: null }) });
  }
  const missing = [...tagsOf.keys()].filter((d) => !seen.has(d)).sort();
  return { candidates: out, missing };
}

export interface TagRecheck {
  /** digest -> why its deletion is skipped */
  skip: Map<string, string>;
  /** tags listed now */
  tags: number;
  /** false when the registry no longer knows the repository */
  exists: boolean;
}

/**
 * @param decided tag -> digest as decided on (the task's decision rows)
 * @param deleting the digests about to be deleted
 */
export async function recheckTags(
  client: RegistryClient, repository: string, decided: ReadonlyMap<string, string>, deleting: ReadonlySet<string>,
): Promise<TagRecheck> {
  const skip = new Map<string, string>();
  let names: string[] | null;
  try {
    names = await client.listTags(repository);
    if (names === null) return { skip, tags: 0, exists: false };
    const decidedDigests = new Set(decided.values());
    const heads = await Promise.all(names.map(async (tag) => [tag, await client.headManifest(repository, tag)] as const));
    const unknown = new Map<string, string>(); // newly tagged digest no decision knows -> a tag
    for (const [tag, head] of heads) {
      if (!head || decided.get(tag) === head.digest) continue;
      if (deleting.has(head.digest)) {
        if (!skip.has(head.digest)) skip.set(head.digest, `gained tag ${tag} after the decision: not deleted`);
      } else if (!decidedDigests.has(head.digest)) {
        unknown.set(head.digest, tag);
      }
    }
    // a manifest tagged since the decision may be an index of, or a referrer to, a digest
    // about to be deleted
    await Promise.all([...unknown].map(async ([digest, tag]) => {
      const m = await client.getManifest(repository, digest);
      if (!m) return;
      const refs = m.manifest.kind === "index" ? m.manifest.manifests.map((c) => c.digest) : [];
      for (const child of refs) {
        if (deleting.has(child) && !skip.has(child)) skip.set(child, `referenced by index ${digest} tagged ${tag} after the decision: not deleted`);
      }
      const subject = m.manifest.subject?.digest;
      if (subject && deleting.has(subject) && !skip.has(subject)) {
        skip.set(subject, `gained referrer ${digest} (tag ${tag}) after the decision: not deleted`);
      }
    }));
  } catch (err) {
    throw new IncompleteRead(message(err));
  }
  return { skip, tags: names.length, exists: true };
}
