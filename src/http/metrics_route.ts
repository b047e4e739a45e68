import type { FastifyInstance } from "fastify";
import { metricsRegistry } from "../metrics/registry.js";

/** GET /metrics in the Prometheus text format. */
export function registerMetricsRoute(app: FastifyInstance): void {
  app.get("/metrics", async (_req, reply) => {
    const body = await metricsRegistry.metrics();
    return reply.type(metricsRegistry.contentType).send(body);
  });
}
