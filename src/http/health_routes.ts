import type { FastifyInstance } from "fastify";
import { migrationStatus } from "../db/migrate.js";
import type { AppContext } from "../service/context.js";

/**
 * /healthz: the process is up (no database call).
 * /readyz: the database answers within 2 s and every migration on disk is applied.
 */
export function registerHealthRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_req, reply) => {
    try {
      const status = await withTimeout(migrationStatus(ctx.pool), 2000);
      if (!status.current) {
        return reply.code(503).send({ status: "not ready", reason: status.problem ?? `pending migrations: ${status.pending.join(", ")}` });
      }
      return { status: "ready" };
    } catch (err) {
      return reply.code(503).send({ status: "not ready", reason: `database: ${(err as Error).message}` });
    }
  });
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
