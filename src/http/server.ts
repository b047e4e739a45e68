import Fastify, { type FastifyInstance } from "fastify";
import type { AppContext } from "../service/context.js";
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
  const app = Fastify({ logger: false, forceCloseConnections: true });
  registerHealthRoutes(app, ctx);
  for (const register of registrars) await register(app, ctx);
  await app.listen({ host: ctx.config.httpHost, port: ctx.config.httpPort });
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : ctx.config.httpPort;
  const host = ctx.config.httpHost.includes(":") ? `[${ctx.config.httpHost}]` : ctx.config.httpHost;
  return { app, url: `http://${host}:${port}`, stop: () => app.close() };
}
