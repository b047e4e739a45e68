// What the evaluator decides about: one artifact (manifest digest) of one repository.
//
// Times are milliseconds since the epoch, null when unknown / never happened.
// `pushed_at` is when the artifact's manifest was first pushed to (or first seen in) the
// repository; a tag's `pushed_at` is when that tag was last pushed onto this digest. Count
// rules (latestPushedK, latestActiveK) rank an artifact by its own push only; its "last push"
// (nDaysSinceLastPush, and the time shown in decisions) is the max of the artifact's and every
// tag's push time, as in Harbor. Pulled time is the max likewise. A null pull means "never
// pulled": it sorts after every pulled artifact and never qualifies for nDaysSinceLastPull.
//
// Graph: `children` lists the digests an image index references (platform manifests);
// `subject` is the digest a referrer (signature, SBOM, attestation) points at. An artifact
// whose subject is in the same repository is a referrer and no candidate of its own; an untagged
// artifact referenced by an index of the repository is no candidate of its own either.
// cosign's tag scheme names the subject in the tag instead: `sha256-<hex>.sig` / `.att` /
// `.sbom` on a manifest makes it an attachment of `sha256:<hex>` (see attachmentOf).
import { z } from "zod";
import { PolicyValidationError, issuesFromZod } from "./policy_error.js";

export interface CandidateTag {
  name: string;
  pushed_at: number | null;
  pulled_at: number | null;
}

export interface Candidate {
  digest: string;
  tags: readonly CandidateTag[];
  pushed_at: number | null;
  pulled_at: number | null;
  media_type?: string | null;
  children?: readonly string[] | null;
  subject?: string | null;
}

/** cosign's tag scheme: exactly `sha256-` + 64 lowercase hex + `.sig`, `.att` or `.sbom`. */
const ATTACHMENT_TAG = /^sha256-([0-9a-f]{64})\.(sig|att|sbom)$/;

export type AttachmentKind = "sig" | "att" | "sbom";

/**
 * The subject a cosign-style attachment tag names (`sha256-<hex>.sig` -> `sha256:<hex>`), or
 * null for any other tag. Only that exact shape counts: `sha256-<hex>` alone (the OCI
 * referrers fallback tag), upper-case hex or another suffix are ordinary tags.
 */
export function attachmentOf(tag: string): { subject: string; kind: AttachmentKind } | null {
  // the exact shape is 75 or 76 characters: most tags are turned away without the regex
  if ((tag.length !== 75 && tag.length !== 76) || !tag.startsWith("sha256-")) return null;
  const m = ATTACHMENT_TAG.exec(tag);
  return m ? { subject: `sha256:${m[1]!}`, kind: m[2] as AttachmentKind } : null;
}

/** A candidate that carries its repository ("ns/name"), as in the evaluate CLI's input file. */
export interface RepositoryCandidate extends Candidate {
  repository: string;
}

// ---- JSON input (the evaluate CLI's candidates file) ----

const isoTime = z
  .union([z.iso.datetime({ offset: true, error: "must be an ISO 8601 time with zone, or null" }), z.null()], {
    error: "must be an ISO 8601 time with zone, or null",
  })
  .optional();

const tagInput = z.union(
  [
    z.string().min(1, "must not be empty"),
    z.strictObject({ name: z.string().min(1, "must not be empty"), pushed_at: isoTime, pulled_at: isoTime }),
  ],
  { error: "must be a tag name or {name, pushed_at, pulled_at}" },
);

const digest = z.string().regex(/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/, "must be a digest like sha256:<hex>");

export const CandidateInputSchema = z.strictObject({
  repository: z.string().min(1, "must not be empty"),
  digest,
  tags: z.array(tagInput).default([]),
  pushed_at: isoTime,
  pulled_at: isoTime,
  media_type: z.string().nullable().optional(),
  children: z.array(digest).nullable().optional(),
  subject: digest.nullable().optional(),
});

export const CandidatesFileSchema = z.array(CandidateInputSchema, { error: "must be a JSON array of candidates" });

export type CandidateInput = z.input<typeof CandidateInputSchema>;

function toMillis(value: string | null | undefined): number | null {
  return value == null ? null : Date.parse(value);
}

/** Parses the candidates JSON array. Throws PolicyValidationError naming the field, e.g. "[3].pushed_at: ...". */
export function parseCandidates(input: unknown): RepositoryCandidate[] {
  const result = CandidatesFileSchema.safeParse(input);
  if (!result.success) throw new PolicyValidationError(issuesFromZod(result.error.issues), "invalid candidates");
  return result.data.map((c) => {
    const candidate: RepositoryCandidate = {
      repository: c.repository,
      digest: c.digest,
      tags: c.tags.map((t) =>
        typeof t === "string"
          ? { name: t, pushed_at: null, pulled_at: null }
          : { name: t.name, pushed_at: toMillis(t.pushed_at), pulled_at: toMillis(t.pulled_at) },
      ),
      pushed_at: toMillis(c.pushed_at),
      pulled_at: toMillis(c.pulled_at),
    };
    if (c.media_type != null) candidate.media_type = c.media_type;
    if (c.children != null) candidate.children = c.children;
    if (c.subject != null) candidate.subject = c.subject;
    return candidate;
  });
}
