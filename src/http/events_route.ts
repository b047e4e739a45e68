/**
 * POST /events?registry=<name>: notification envelopes of a distribution registry.
 *
 * Which registry: the `registry` query parameter names a row of ebb.registries; configure
 * each registry's endpoint with its own name, e.g. in the registry's config.yml:
 *
 *   notifications:
 *     events: { includereferences: true }
 *     endpoints:
 *       - name: ebb
 *         url: http://ebb:8080/events?registry=local
 *         headers: { Authorization: ["Bearer <EBB_EVENTS_TOKEN>"] }
 *
 * Answers: 401 without the shared token (compared in constant time; checked before the
 * body is read), 413 over eventsBodyLimitBytes or over eventsMaxPerEnvelope events (counted
 * before any event is validated, so a huge envelope costs no validation), 400 with the reason naming the field for
 * malformed JSON or wrong shapes, 404 for an unknown registry, 503 + Retry-After when the
 * pull buffer is full, the database is unavailable or ebb is stopping (the registry
 * retries), 200 {accepted, ignored} otherwise. Any content type is read as JSON (the
 * registry sends application/vnd.docker.distribution.events.v1+json).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { eventCountOver } from "../ingest/event_schema.js";
import type { Ingest } from "../ingest/ingest.js";
import type { AppContext } from "../service/context.js";
import type { RouteRegistrar } from "./server.js";

function sha256(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

/** Constant-time comparison of the Authorization header with "Bearer <token>". */
export function bearerTokenMatches(header: string | undefined, token: string | undefined): boolean {
  if (token === undefined || token === "" || header === undefined) return false;
  const m = /^Bearer[ \t]+(.+)$/i.exec(header.trim());
  if (!m) return false;
  // Equal-length digests: the comparison time does not depend on where the tokens differ
  // nor on their lengths.
  return timingSafeEqual(sha256(m[1]!.trim()), sha256(token));
}

export async function registerEventsRoute(app: FastifyInstance, ctx: AppContext, ingest: Ingest): Promise<void> {
  const bodyLimit = ctx.config.eventsBodyLimitBytes;
  const token = ctx.config.eventsToken;
  const maxEvents = ctx.config.eventsMaxPerEnvelope;
  if (token === undefined) ctx.logger.warn("EBB_EVENTS_TOKEN is not set: POST /events refuses every notification (401)");

  // An encapsulated plugin: the JSON parser and error format below apply to /events only.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "string", bodyLimit }, (_req, body, done) => {
      const text = typeof body === "string" ? body : body.toString("utf8");
      if (text.trim() === "") return done(null, undefined);
      try {
        done(null, JSON.parse(text));
      } catch (err) {
        const e = new Error(`body: malformed JSON (${(err as Error).message})`) as FastifyError;
        e.statusCode = 400;
        done(e, undefined);
      }
    });

    scope.setErrorHandler((err: FastifyError, _req, reply) => {
      const status = err.statusCode ?? 500;
      if (status === 413) {
        ingest.counters.envelopesRefused.too_large++;
        return reply.code(413).send({ error: `body: larger than ${bodyLimit} bytes (eventsBodyLimitBytes)` });
      }
      if (status >= 400 && status < 500) {
        ingest.counters.envelopesRefused.bad_request++;
        return reply.code(status).send({ error: err.message });
      }
      ingest.counters.envelopesRefused.error++;
      ctx.logger.error({ err: err.message }, "events: unexpected error");
      return reply.code(500).send({ error: "internal error" });
    });

    const authenticate = async (req: FastifyRequest, reply: FastifyReply) => {
      if (bearerTokenMatches(req.headers.authorization, token)) return;
      ingest.counters.envelopesRefused.unauthorized++;
      return reply
        .code(401)
        .header("www-authenticate", 'Bearer realm="ebb-events"')
        .header("connection", "close")
        .send({ error: token === undefined ? "authorization: no events token is configured (EBB_EVENTS_TOKEN)" : "authorization: missing or wrong bearer token" });
    };

    scope.post<{ Querystring: { registry?: string | string[] } }>("/events", { bodyLimit, onRequest: authenticate }, async (req, reply) => {
      const q = req.query.registry;
      const registry = Array.isArray(q) ? undefined : q;
      const count = eventCountOver(req.body, maxEvents);
      if (count !== undefined) {
        ingest.counters.envelopesRefused.too_large++;
        return reply.code(413).send({ error: `events: ${count} events in one envelope, more than ${maxEvents} (EBB_EVENTS_MAX_PER_ENVELOPE); nothing was recorded` });
      }
      const outcome = await ingest.receive(registry, req.body);
      if (outcome.status === 200) return reply.code(200).send({ accepted: outcome.accepted, ignored: outcome.ignored });
      if (outcome.status === 503) return reply.code(503).header("retry-after", String(outcome.retryAfterSeconds)).send({ error: outcome.reason });
      return reply.code(outcome.status).send({ error: outcome.reason });
    });
  });
}

/** The registrar for startHttp(ctx, [..., eventsRoute(ingest)]). */
export function eventsRoute(ingest: Ingest): RouteRegistrar {
  return (app, ctx) => registerEventsRoute(app, ctx, ingest);
}
