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
 * /api/* needs EBB_API_TOKEN and /metrics EBB_METRICS_TOKEN when they are set (bearer
 * tokens, compared in constant time); /healthz, /readyz and /events (its own token) are not
 * affected. Decided on the matched route, so no spelling of a path slips past; a refusal is
 * 401 before any handler runs.
 */
function requireTokens(app: FastifyInstance, ctx: AppContext): void {
  const { apiToken, metricsToken } = ctx.config;
  if (apiToken === undefined && ctx.config.api) ctx.logger.info({ httpHost: ctx.config.httpHost }, "EBB_API_TOKEN is not set: /api/* answers every client that reaches the HTTP address");
  app.addHook("onRequest", async (req, reply) => {
    const route = req.routeOptions.url ?? "";
    const [token, name, realm] = route === "/api" || route.startsWith("/api/")
      ? [apiToken, "EBB_API_TOKEN", "ebb-api"]
      : route === "/metrics" ? [metricsToken, "EBB_METRICS_TOKEN", "ebb-metrics"] : [undefined, "", ""];
    if (token === undefined || bearerTokenMatches(req.headers.authorization, token)) return;
    return reply
      .code(401)
      .header("www-authenticate", `Bearer realm="${realm}"`)
      .send({ error: `authorization: missing or wrong bearer token (${name})` });
  });
}
