/**
 * Parsing of manifest bytes into what the catalog needs: image manifests (config, layers),
 * indexes (children with platform) and the OCI 1.1 `subject` / `artifactType` of either.
 * Anything malformed is rejected with a RegistryProtocolError naming the field.
 */
import { z } from "zod";
import { RegistryProtocolError } from "./errors.js";
import { bareMediaType, manifestKind } from "./media_types.js";

const digestSchema = z.string().regex(/^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/, "not a sha256/sha512 digest");

const platformSchema = z.object({
  architecture: z.string(),
  os: z.string(),
  variant: z.string().optional(),
  "os.version": z.string().optional(),
});

const descriptorSchema = z.object({
  mediaType: z.string().min(1),
  digest: digestSchema,
  size: z.number().int().nonnegative(),
  artifactType: z.string().optional(),
  platform: platformSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

const imageSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

const indexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

export type Descriptor = z.infer<typeof descriptorSchema>;
export type Platform = z.infer<typeof platformSchema>;

export interface ImageManifest {
  kind: "image";
  mediaType: string;
  artifactType: string | undefined;
  config: Descriptor;
  layers: Descriptor[];
  subject: Descriptor | undefined;
  annotations: Record<string, string> | undefined;
}

export interface IndexManifest {
  kind: "index";
  mediaType: string;
  artifactType: string | undefined;
  /** Children (platform manifests, or nested indexes/artifacts) with their platform if given. */
  manifests: Descriptor[];
  subject: Descriptor | undefined;
  annotations: Record<string, string> | undefined;
}

export type ParsedManifest = ImageManifest | IndexManifest;

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`)
    .join("; ");
}

/**
 * Parse manifest bytes. The media type is the body's `mediaType`, else the Content-Type;
 * when both are manifest types they must agree.
 * @param what names the manifest in error messages, e.g. "manifest library/app:v1".
 */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined, what: string): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (err) {
    throw new RegistryProtocolError(`${what}: malformed manifest: not JSON (${(err as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new RegistryProtocolError(`${what}: malformed manifest: not a JSON object`);
  }
  const bodyType = (json as { mediaType?: unknown }).mediaType;
  if (bodyType !== undefined && typeof bodyType !== "string") {
    throw new RegistryProtocolError(`${what}: malformed manifest: mediaType is not a string`);
  }
  const headerType = bareMediaType(contentType);
  const mediaType = bodyType ?? headerType;
  if (mediaType === undefined) {
    throw new RegistryProtocolError(`${what}: malformed manifest: no mediaType in body or Content-Type`);
  }
  const kind = manifestKind(mediaType);
  if (kind === undefined) {
    throw new RegistryProtocolError(`${what}: unsupported manifest media type ${JSON.stringify(mediaType)}`);
  }
  if (bodyType !== undefined && headerType !== undefined && manifestKind(headerType) !== undefined && headerType !== bodyType) {
    throw new RegistryProtocolError(
      `${what}: malformed manifest: mediaType ${JSON.stringify(bodyType)} disagrees with Content-Type ${JSON.stringify(headerType)}`,
    );
  }
  if (kind === "image") {
    const parsed = imageSchema.safeParse(json);
    if (!parsed.success) throw new RegistryProtocolError(`${what}: malformed image manifest: ${describeIssues(parsed.error)}`);
    const m = parsed.data;
    return {
      kind, mediaType, artifactType: m.artifactType, config: m.config, layers: m.layers,
      subject: m.subject, annotations: m.annotations,
    };
  }
  const parsed = indexSchema.safeParse(json);
  if (!parsed.success) throw new RegistryProtocolError(`${what}: malformed index: ${describeIssues(parsed.error)}`);
  const m = parsed.data;
  return {
    kind, mediaType, artifactType: m.artifactType, manifests: m.manifests,
    subject: m.subject, annotations: m.annotations,
  };
}
