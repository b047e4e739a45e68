import type { FastifyInstance } from "fastify";
import { migrationStatus } from "../db/migrate.js";
import { withoutWaiting } from "../db/pool.js";
import type { AppContext } from "../service/context.js";

/**
 * /healthz: the process is up (no database call).
 * /readyz: the database accepts this process's connections (no outage under way, see
 * DatabaseWeather), answers within 2 s, and every migration on disk is applied.
 */
export function registerHealthRoutes(app: FastifyInstance, ctx: AppContext): void {
  // No request waits out a database outage (the pool's connect would): it is answered at
  // once (503, or the route's own error), and the caller retries. Registered first, on the
  // root, so it covers every route.
  app.addHook("onRequest", (_req, _reply, done) => withoutWaiting(() => done()));
  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_req, reply) => {
    // during an outage, a quick probe: the outage ends here too when nothing else of this
    // process waits for the database any more (an http-only process has no periodic job)
    if (ctx.weather?.current) {
      await withTimeout(ctx.pool.query("select 1"), 2000).then(() => ctx.weather?.ok(), () => {});
    }
    const outage = ctx.weather?.current;
    if (outage) {
      return reply.code(503).send({
        status: "not ready",
        reason: `database unavailable since ${outage.since.toISOString()} (SQLSTATE ${outage.sqlstate}: ${outage.message}); ebb is waiting for it`,
        database: { sqlstate: outage.sqlstate, since: outage.since.toISOString(), refusals: outage.refusals },
      });
    }
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
