import Fastify, { type FastifyInstance } from "fastify";
import { assertHttpExposure } from "../config/load.js";
import type { AppContext } from "../service/context.js";
import { bearerTokenMatches } from "./events_route.js";
import { registerHealthRoutes } from "./health_routes.js";

export interface HttpRole {
  app: FastifyInstance;
  /** The bound address, e.g. http://127.0.0.1:8080 */
  url: string;
  stop(): Promise<void>;
}

/** Route groups other parts of ebb add (events ingest, metrics, JSON API). */
export type RouteRegistrar = (app: FastifyInstance, ctx: AppContext) => void | Promise<void>;

export async function startHttp(ctx: AppContext, registrars: RouteRegistrar[] = []): Promise<HttpRole> {
  assertHttpExposure(ctx.config);
  const app = Fastify({ logger: false, forceCloseConnections: true });
  requireTokens(app, ctx);
  registerHealthRoutes(app, ctx);
  for (const register of registrars) await register(app, ctx);
  await app.listen({ host: ctx.config.httpHost, port: ctx.config.httpPort });
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : ctx.config.httpPort;
  const host = ctx.config.httpHost.includes(":") ? `[${ctx.config.httpHost}]` : ctx.config.httpHost;
  return { app, url: `http://${host}:${port}`, stop: () => app.close() };
}

/**
 * /api/* needs EBB_API_TOKEN (without one it refuses every request: the API is closed until
 * a token is configured) and /metrics EBB_METRICS_TOKEN when that is set (bearer tokens,
 * compared in constant time); /healthz, /readyz and /events (its own token) are not
 * affected. Decided on the matched route, so no spelling of a path slips past; a refusal is
 * 401 before any handler runs.
 */
function requireTokens(app: FastifyInstance, ctx: AppContext): void {
  const { apiToken, metricsToken } = ctx.config;
  if (apiToken === undefined && ctx.config.api) ctx.logger.warn("EBB_API_TOKEN is not set: /api/* refuses every request (401) until a token is configured");
  app.addHook("onRequest", async (req, reply) => {
    const route = req.routeOptions.url ?? "";
    const isApi = route === "/api" || route.startsWith("/api/");
    const [token, name, realm] = isApi
      ? [apiToken, "EBB_API_TOKEN", "ebb-api"]
      : route === "/metrics" ? [metricsToken, "EBB_METRICS_TOKEN", "ebb-metrics"] : [undefined, "", ""];
    if (token === undefined && !isApi) return;
    if (token !== undefined && bearerTokenMatches(req.headers.authorization, token)) return;
    const error = token === undefined
      ? "authorization: the JSON API is closed: ebb has no EBB_API_TOKEN (set it or EBB_API_TOKEN_FILE, then send it as a bearer token)"
      : `authorization: missing or wrong bearer token (${name})`;
    return reply.code(401).header("www-authenticate", `Bearer realm="${realm}"`).send({ error });
  });
}
