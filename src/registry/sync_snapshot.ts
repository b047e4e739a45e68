/**
 * Read one repository from the registry over HTTP into a snapshot for sync: every tag's
 * digest, the manifests to inspect (with index children, subject and config `created`) -
 * those ebb does not know yet and those it knows only from a push event (inspected_at null,
 * ebb.artifacts.inspected_at) - and which known digests the registry confirms
 * gone (404 by digest).
 * No database connection is used here: the caller reads what it knows first, then calls this.
 */
import type { RegistryClient } from "./client.js";
import type { ParsedManifest } from "./manifest.js";

export interface KnownRepository {
  /** digests in the catalog at the start of the sync */
  digests: Set<string>;
  /** tag names in the catalog at the start of the sync */
  tags: Set<string>;
  /** the subset of `digests` never inspected (inspected_at null): their manifests are read */
  uninspected: Set<string>;
}

export interface SnapshotReference {
  kind: "index_child" | "subject";
  refDigest: string;
  platform: string | null;
}

export interface SnapshotArtifact {
  digest: string;
  mediaType: string;
  artifactType: string | null;
  size: number;
  createdAt: Date | null;
  references: SnapshotReference[];
}

export interface RepositorySnapshot {
  repository: string;
  /** false when the registry answered NAME_UNKNOWN for the tag list */
  exists: boolean;
  /** tag -> digest, as the registry has them now */
  tags: Map<string, string>;
  /** manifests new to the catalog, read in full */
  newArtifacts: Map<string, SnapshotArtifact>;
  /** known manifests that were uninspected, now read in full (the registry still has them) */
  inspectedArtifacts: Map<string, SnapshotArtifact>;
  /** known digests the registry confirmed still present */
  stillPresent: Set<string>;
  /** known digests the registry confirmed gone (404 by digest) */
  vanished: string[];
  /** known tags the registry no longer lists */
  vanishedTags: string[];
}

function platformText(p: { os: string; architecture: string; variant?: string | undefined } | undefined): string | null {
  if (!p) return null;
  return [p.os, p.architecture, p.variant].filter((x) => x !== undefined && x !== "").join("/");
}

function referencesOf(m: ParsedManifest): SnapshotReference[] {
  const refs: SnapshotReference[] = [];
  if (m.kind === "index") {
    for (const child of m.manifests) {
      refs.push({ kind: "index_child", refDigest: child.digest, platform: platformText(child.platform) });
    }
  }
  if (m.subject) refs.push({ kind: "subject", refDigest: m.subject.digest, platform: null });
  // one edge per (kind, ref_digest): an index listing a digest twice keeps the first platform
  const seen = new Set<string>();
  return refs.filter((r) => {
    const key = `${r.kind} ${r.refDigest}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Any HTTP failure rejects the whole snapshot (the caller marks the repository STALE):
 * a partial read is never taken as the truth.
 */
export async function readRepositorySnapshot(
  client: RegistryClient, repository: string, known: KnownRepository,
): Promise<RepositorySnapshot> {
  const snapshot: RepositorySnapshot = {
    repository, exists: true, tags: new Map(), newArtifacts: new Map(), inspectedArtifacts: new Map(),
    stillPresent: new Set(), vanished: [], vanishedTags: [],
  };
  const tagNames = await client.listTags(repository);
  if (tagNames === null) {
    // the registry does not know the repository at all: every known manifest is gone
    snapshot.exists = false;
    snapshot.vanished = [...known.digests];
    snapshot.vanishedTags = [...known.tags];
    return snapshot;
  }

  // tag -> digest by HEAD (the client bounds concurrency); a tag deleted meanwhile is skipped
  const heads = await Promise.all(tagNames.map(async (tag) => [tag, await client.headManifest(repository, tag)] as const));
  for (const [tag, head] of heads) if (head) snapshot.tags.set(tag, head.digest);
  const listed = new Set(snapshot.tags.keys());
  snapshot.vanishedTags = [...known.tags].filter((t) => !listed.has(t));

  // manifests to read in full: new to the catalog or never inspected (wherever they are:
  // tagged, index children, or untagged such as referrers pushed by digest), following the
  // children of every index read
  const toInspect = (d: string) => !known.digests.has(d) || known.uninspected.has(d);
  const reachable = new Set<string>(snapshot.tags.values());
  const queued = new Set<string>([...[...reachable].filter(toInspect), ...known.uninspected]);
  let frontier = [...queued];
  const gone = new Set<string>();
  while (frontier.length > 0) {
    const fetched = await Promise.all(frontier.map(async (digest) => {
      const m = await client.getManifest(repository, digest);
      if (m === null) return { digest, artifact: null };
      const createdAt = await client.getImageCreated(repository, m.manifest);
      const artifact: SnapshotArtifact = {
        digest, mediaType: m.mediaType, artifactType: m.manifest.artifactType ?? null, size: m.size, createdAt,
        references: referencesOf(m.manifest),
      };
      return { digest, artifact };
    }));
    const next: string[] = [];
    for (const { digest, artifact } of fetched) {
      if (artifact === null) {
        gone.add(digest); // deleted meanwhile (404 by digest)
        continue;
      }
      if (known.digests.has(digest)) snapshot.inspectedArtifacts.set(digest, artifact);
      else snapshot.newArtifacts.set(digest, artifact);
      for (const ref of artifact.references) {
        if (ref.kind !== "index_child") continue;
        reachable.add(ref.refDigest);
        if (queued.has(ref.refDigest) || !toInspect(ref.refDigest)) continue;
        queued.add(ref.refDigest);
        next.push(ref.refDigest);
      }
    }
    frontier = next;
  }
  for (const [tag, digest] of snapshot.tags) {
    if (!gone.has(digest)) continue;
    snapshot.tags.delete(tag);
    if (known.tags.has(tag)) snapshot.vanishedTags.push(tag);
  }

  // known digests: read in full or reachable ones are present, a 404 by digest on the read is
  // gone; the rest (inspected untagged, or children of inspected indexes) are checked one by
  // one - only a 404 by digest counts as gone
  const unconfirmed: string[] = [];
  for (const digest of known.digests) {
    if (snapshot.inspectedArtifacts.has(digest)) snapshot.stillPresent.add(digest);
    else if (gone.has(digest)) snapshot.vanished.push(digest);
    else if (reachable.has(digest)) snapshot.stillPresent.add(digest);
    else unconfirmed.push(digest);
  }
  const checks = await Promise.all(unconfirmed.map(async (digest) => [digest, await client.headManifest(repository, digest)] as const));
  for (const [digest, head] of checks) {
    if (head) snapshot.stillPresent.add(digest);
    else snapshot.vanished.push(digest);
  }
  return snapshot;
}
