/**
 * What a notification event means for the catalog. The registry also notifies blob
 * traffic (layers and configs: push, pull, mount, delete); only manifest events matter:
 *   - push of a manifest  -> upsert the artifact (and the tag when pushed by tag)
 *   - pull of a manifest  -> pulled_at of the artifact (and of the tag when pulled by tag);
 *                            GET and HEAD both count (a client resolving a tag with HEAD and
 *                            then fetching by digest did pull it)
 *   - delete with a tag   -> remove the tag
 *   - delete with digest  -> remove the artifact (its tags and references go with it)
 * A manifest event is told from a blob event by target.url (".../manifests/<ref>"), or,
 * for senders without url, by a manifest media type. Deletes carry no url in distribution
 * 2.8; a successful blob DELETE cannot name a manifest digest (manifests are not layer
 * links), so a delete by digest is taken as a manifest delete.
 */
import type { NotificationEvent } from "./event_schema.js";
import { isEbbUserAgent } from "../registry/user_agent.js";

export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
]);
export const INDEX_MEDIA_TYPES: ReadonlySet<string> = new Set([
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
]);

export interface PushChange {
  kind: "push";
  repository: string;
  digest: string;
  mediaType: string;
  size: number;
  tag: string | undefined;
  /** event time, ms since epoch */
  at: number;
  /**
   * Index children from target.references (registry setting
   * notifications.events.includereferences: true); undefined when the event carries no
   * references, [] for a manifest that is not an index.
   */
  children: string[] | undefined;
}
export interface PullChange {
  kind: "pull";
  repository: string;
  digest: string;
  tag: string | undefined;
  at: number;
}
export interface DeleteArtifactChange {
  kind: "delete_artifact";
  repository: string;
  digest: string;
}
export interface DeleteTagChange {
  kind: "delete_tag";
  repository: string;
  tag: string;
}
export type CatalogChange = PushChange | PullChange | DeleteArtifactChange | DeleteTagChange;
export type IgnoreReason = "blob" | "action" | "user_agent";

export type Classified =
  | { ok: true; changes: CatalogChange[]; ignored: Record<IgnoreReason, number> }
  | { ok: false; reason: string };

function isManifestEvent(e: NotificationEvent): boolean {
  const t = e.target;
  if (t.url !== undefined && t.url !== "") {
    let path = t.url;
    try {
      path = new URL(t.url).pathname;
    } catch {
      // not an absolute URL: match the raw text
    }
    return /\/manifests\/[^/]+$/.test(path);
  }
  return t.tag !== undefined || (t.mediaType !== undefined && MANIFEST_MEDIA_TYPES.has(t.mediaType));
}

/**
 * @param ignoreUserAgents lower-case substrings: pulls whose request.useragent contains one
 *   are not use (vulnerability scanners and the like). Pulls by ebb itself (user agent
 *   `ebb/<version>`) are always ignored, whatever this list holds.
 */
export function classifyEvents(events: readonly NotificationEvent[], ignoreUserAgents: readonly string[]): Classified {
  const changes: CatalogChange[] = [];
  const ignored: Record<IgnoreReason, number> = { blob: 0, action: 0, user_agent: 0 };
  for (const [i, e] of events.entries()) {
    const t = e.target;
    const at = Date.parse(e.timestamp);
    const field = (name: string) => `events[${i}].target.${name}`;
    switch (e.action) {
      case "push": {
        if (!isManifestEvent(e)) {
          ignored.blob++;
          break;
        }
        if (t.digest === undefined) return { ok: false, reason: `${field("digest")}: required for a manifest push` };
        if (t.mediaType === undefined) return { ok: false, reason: `${field("mediaType")}: required for a manifest push` };
        const size = t.size ?? t.length;
        if (size === undefined) return { ok: false, reason: `${field("size")}: required for a manifest push` };
        const children = INDEX_MEDIA_TYPES.has(t.mediaType)
          ? t.references?.filter((r) => r.mediaType === undefined || MANIFEST_MEDIA_TYPES.has(r.mediaType)).map((r) => r.digest)
          : [];
        changes.push({ kind: "push", repository: t.repository, digest: t.digest, mediaType: t.mediaType, size, tag: t.tag, at, children });
        break;
      }
      case "pull": {
        if (!isManifestEvent(e)) {
          ignored.blob++;
          break;
        }
        // ebb's own reads (user agent ebb/<version>) are never use; nor are the agents the user lists
        const ua = e.request?.useragent?.toLowerCase();
        if (isEbbUserAgent(ua) || (ua !== undefined && ignoreUserAgents.some((s) => ua.includes(s)))) {
          ignored.user_agent++;
          break;
        }
        if (t.digest === undefined) return { ok: false, reason: `${field("digest")}: required for a manifest pull` };
        changes.push({ kind: "pull", repository: t.repository, digest: t.digest, tag: t.tag, at });
        break;
      }
      case "delete": {
        if (t.url !== undefined && t.url !== "" && !isManifestEvent(e)) {
          ignored.blob++;
        } else if (t.tag !== undefined) {
          changes.push({ kind: "delete_tag", repository: t.repository, tag: t.tag });
        } else if (t.digest !== undefined) {
          changes.push({ kind: "delete_artifact", repository: t.repository, digest: t.digest });
        } else {
          return { ok: false, reason: `events[${i}].target: a delete needs a digest or a tag` };
        }
        break;
      }
      case "mount":
        ignored.blob++; // cross-repository blob mount
        break;
      default:
        ignored.action++;
    }
  }
  return { ok: true, changes, ignored };
}
