/**
 * Test support for the notifications ingest: a real HTTP server (startHttp + eventsRoute)
 * over a real database, envelope builders shaped like docker-registry 2.8's, and catalog
 * seeding/reading helpers.
 */
import { createHash } from "node:crypto";
import type pg from "pg";
import { loadConfig } from "../../../src/config/load.js";
import type { ConfigInput } from "../../../src/config/schema.js";
import { createKysely } from "../../../src/db/kysely.js";
import { eventsRoute } from "../../../src/http/events_route.js";
import { startHttp } from "../../../src/http/server.js";
import { startIngest, type Ingest } from "../../../src/ingest/ingest.js";
import { createLogger } from "../../../src/log/logger.js";
import type { AppContext } from "../../../src/service/context.js";

export const TOKEN = "test-events-token-4f7c1a9e";
export const AUTH = { authorization: `Bearer ${TOKEN}` };
export const EVENTS_TYPE = "application/vnd.docker.distribution.events.v1+json";
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

interface AfterContext {
  after(fn: () => Promise<void> | void): void;
}

export interface EventsServer {
  url: string;
  ingest: Ingest;
  /** POST /events?registry=<registry> with the token and the registry's content type. */
  post(body: unknown, opts?: { registry?: string; headers?: Record<string, string> }): Promise<Response>;
  stop(): Promise<void>;
}

export async function startEventsServer(
  t: AfterContext, pool: pg.Pool, databaseUrl: string, settings: Partial<Record<keyof ConfigInput, unknown>> = {},
  opts: { ingestPool?: pg.Pool } = {},
): Promise<EventsServer> {
  const config = loadConfig({}, { databaseUrl, httpPort: 0, eventsToken: TOKEN, eventsFlushIntervalMs: 60_000, ...settings });
  const ctx = {
    config, pool, db: createKysely(pool), logger: createLogger("silent"), workerUtils: undefined as never,
  } satisfies AppContext;
  const ingest = startIngest({ ...ctx, pool: opts.ingestPool ?? pool });
  const http = await startHttp(ctx, [eventsRoute(ingest)]);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await http.stop();
    await ingest.stop();
  };
  t.after(stop);
  return {
    url: http.url,
    ingest,
    post: (body, opts = {}) =>
      fetch(`${http.url}/events?registry=${encodeURIComponent(opts.registry ?? "local")}`, {
        method: "POST",
        headers: { "content-type": EVENTS_TYPE, ...AUTH, ...opts.headers },
        body: typeof body === "string" ? body : JSON.stringify(body),
      }),
    stop,
  };
}

export function digestOf(s: string): string {
  return `sha256:${createHash("sha256").update(s).digest("hex")}`;
}

let seq = 0;
function base(action: string, at: Date | string, ua = "docker/24.0 go/go1.20") {
  const id = `ev-${++seq}`;
  return {
    id,
    timestamp: typeof at === "string" ? at : at.toISOString(),
    action,
    request: { id: `req-${id}`, addr: "127.0.0.1:5555", host: "registry:5000", method: action === "pull" ? "GET" : action === "push" ? "PUT" : "DELETE", useragent: ua },
    actor: {},
    source: { addr: "registry:5000", instanceID: "0b7c7a5e-0000-4000-8000-000000000000" },
  };
}

export function pushEvent(o: { repo: string; digest: string; tag?: string; at: Date; mediaType?: string; size?: number; references?: { mediaType: string; digest: string; size: number }[] }) {
  return {
    ...base("push", o.at),
    target: {
      mediaType: o.mediaType ?? OCI_MANIFEST, size: o.size ?? 400, digest: o.digest, length: o.size ?? 400,
      repository: o.repo, url: `http://registry:5000/v2/${o.repo}/manifests/${o.digest}`,
      ...(o.tag ? { tag: o.tag } : {}), ...(o.references ? { references: o.references } : {}),
    },
  };
}

export function pullEvent(o: { repo: string; digest: string; tag?: string; at: Date; ua?: string; method?: string }) {
  const e = base("pull", o.at, o.ua);
  if (o.method) e.request.method = o.method;
  return {
    ...e,
    target: {
      mediaType: OCI_MANIFEST, size: 400, digest: o.digest, length: 400, repository: o.repo,
      url: `http://registry:5000/v2/${o.repo}/manifests/${o.digest}`, ...(o.tag ? { tag: o.tag } : {}),
    },
  };
}

export function blobEvent(action: "push" | "pull" | "mount", o: { repo: string; digest: string; at: Date }) {
  return {
    ...base(action, o.at),
    target: {
      mediaType: "application/octet-stream", size: 1234, digest: o.digest, length: 1234, repository: o.repo,
      url: `http://registry:5000/v2/${o.repo}/blobs/${o.digest}`,
    },
  };
}

export function deleteEvent(o: { repo: string; digest?: string; tag?: string; at: Date }) {
  return {
    ...base("delete", o.at),
    target: { repository: o.repo, ...(o.digest ? { digest: o.digest } : {}), ...(o.tag ? { tag: o.tag } : {}) },
  };
}

export function envelope(...events: object[]) {
  return { events };
}

/** A registry row named `name` (default "local"); returns its id. */
export async function seedRegistry(pool: pg.Pool, name = "local"): Promise<number> {
  const r = await pool.query<{ id: number }>(
    "insert into ebb.registries (name, base_url) values ($1, 'http://127.0.0.1:5000') returning id", [name],
  );
  return r.rows[0]!.id;
}

export interface ArtifactRow {
  repository: string;
  digest: string;
  media_type: string;
  size: number;
  pushed_at: Date;
  pushed_at_source: string;
  pulled_at: Date | null;
}
export interface TagRow {
  repository: string;
  name: string;
  digest: string;
  pushed_at: Date | null;
  pulled_at: Date | null;
}

export async function artifacts(pool: pg.Pool): Promise<ArtifactRow[]> {
  const r = await pool.query<ArtifactRow>(
    `select rp.name as repository, a.digest, a.media_type, a.size, a.pushed_at, a.pushed_at_source, a.pulled_at
       from ebb.artifacts a join ebb.repositories rp on rp.id = a.repository_id order by 1, 2`,
  );
  return r.rows;
}

export async function tags(pool: pg.Pool): Promise<TagRow[]> {
  const r = await pool.query<TagRow>(
    `select rp.name as repository, t.name, t.digest, t.pushed_at, t.pulled_at
       from ebb.tags t join ebb.repositories rp on rp.id = t.repository_id order by 1, 2`,
  );
  return r.rows;
}

/** The same pool, recording the SQL of every pool.query (the ingest flushes with pool.query). */
export function recordingPool(pool: pg.Pool): { pool: pg.Pool; statements: string[] } {
  const statements: string[] = [];
  const proxy = new Proxy(pool, {
    get(target, prop) {
      if (prop === "query") {
        return (...args: unknown[]) => {
          const first = args[0];
          statements.push(typeof first === "string" ? first : String((first as { text?: string }).text));
          return (target.query as (...a: unknown[]) => unknown)(...args);
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return { pool: proxy, statements };
}
