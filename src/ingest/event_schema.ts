/**
 * The notification envelope of the distribution registry (docker/distribution 2.8 and
 * distribution 3, notifications/event.go), media type
 * application/vnd.docker.distribution.events.v1+json:
 *
 *   {"events":[{"id","timestamp","action":"push"|"pull"|"delete"|"mount",
 *     "target":{"mediaType","size","digest","length","repository","url","tag","references"},
 *     "request":{"id","addr","host","method","useragent"},"actor":{"name"},
 *     "source":{"addr","instanceID"}}]}
 *
 * Only the fields ebb reads are checked; unknown fields are allowed (newer registries add
 * some). Names and digests are checked with the same grammar as the catalog's check
 * constraints (ebb.repositories, ebb.tags), so a write can never fail on them.
 */
import { z } from "zod";

export const EVENTS_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json";

// Same patterns as the check constraints of ebb.repositories.name, ebb.artifacts.digest, ebb.tags.name.
const REPOSITORY = /^[a-z0-9]+([._-]+[a-z0-9]+)*(\/[a-z0-9]+([._-]+[a-z0-9]+)*)*$/;
const DIGEST = /^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Type errors say "required" when the field is missing, else what was expected. */
const expected = (what: string) => ({ error: (iss: { input?: unknown }) => (iss.input === undefined ? "required" : what) });
// PostgreSQL cannot store a NUL character in text: refused here with the field named.
const str = () => z.string(expected("must be a string")).refine((s) => !s.includes("\u0000"), { error: "must not contain the NUL character (\\u0000)" });

const digest = str().max(200).regex(DIGEST, { error: "must be a digest like sha256:<hex>" });
const size = z.number(expected("must be a number")).int({ error: "must be a whole number" }).min(0, { error: "must be >= 0" });

const descriptor = z.looseObject({
  mediaType: str().max(255).optional(),
  size: size.optional(),
  digest,
}, expected("must be an object"));

const target = z.looseObject({
  mediaType: str().max(255).optional(),
  size: size.optional(),
  digest: digest.optional(),
  length: size.optional(),
  repository: str()
    .max(255, { error: "must be at most 255 characters" })
    .regex(REPOSITORY, { error: "must be a repository name like team/app" }),
  url: str().max(4096).optional(),
  tag: str().regex(TAG, { error: "must be a tag name" }).optional(),
  references: z.array(descriptor, expected("must be an array")).max(10_000).optional(),
}, expected("must be an object"));

const timestamp = z
  .string(expected("must be an RFC 3339 time"))
  .max(64)
  .refine((s) => /^\d{4}-\d\d-\d\dT/.test(s) && Number.isFinite(Date.parse(s)), { error: "must be an RFC 3339 time" });

const event = z.looseObject({
  id: str().max(200).optional(),
  timestamp,
  action: str().max(64),
  target,
  request: z
    .looseObject({
      method: str().max(16).optional(),
      useragent: str().max(4096).optional(),
    })
    .optional(),
}, expected("must be an object"));

export const envelopeSchema = z.looseObject({
  events: z.array(event, expected("must be an array of events")).max(100_000),
}, expected("must be an object"));

export type NotificationEvent = z.infer<typeof event>;
export type Envelope = z.infer<typeof envelopeSchema>;

/** "events[3].target.digest" */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : `${out ? "." : ""}${String(p)}`;
  return out || "body";
}

/**
 * The number of events of an envelope when it is more than `max`, else undefined: a length
 * read, so an oversized envelope is refused before any of its events is validated.
 */
export function eventCountOver(body: unknown, max: number): number | undefined {
  if (body === null || typeof body !== "object") return undefined;
  const events = (body as { events?: unknown }).events;
  return Array.isArray(events) && events.length > max ? events.length : undefined;
}

export type EnvelopeParse = { ok: true; envelope: Envelope } | { ok: false; reason: string };

/** Validate a parsed JSON body; the reason names the first offending fields. */
export function parseEnvelope(body: unknown): EnvelopeParse {
  if (body === undefined || body === null || typeof body !== "object" || Array.isArray(body)) {
    return { ok: false, reason: 'body: must be a JSON object {"events":[...]}' };
  }
  const r = envelopeSchema.safeParse(body);
  if (r.success) return { ok: true, envelope: r.data };
  const issues = r.error.issues.slice(0, 5).map((i) => `${fieldPath(i.path)}: ${i.message}`);
  const more = r.error.issues.length > 5 ? ` (and ${r.error.issues.length - 5} more)` : "";
  return { ok: false, reason: issues.join("; ") + more };
}
