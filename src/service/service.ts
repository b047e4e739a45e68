import { makeWorkerUtils } from "graphile-worker";
import type { Config } from "../config/schema.js";
import { resolveDatabase } from "../db/database.js";
import { createKysely } from "../db/kysely.js";
import { migrate, WORKER_SCHEMA } from "../db/migrate.js";
import { createPool } from "../db/pool.js";
import { registerApiRoutes } from "../http/api_routes.js";
import { eventsRoute } from "../http/events_route.js";
import { startIngest, type Ingest } from "../ingest/ingest.js";
import { registerMetricsRoute } from "../http/metrics_route.js";
import { startHttp, type HttpRole } from "../http/server.js";
import { registerExecutionMetrics } from "../metrics/execution_metrics.js";
import { registerIngestMetrics } from "../metrics/ingest_metrics.js";
import { registerPoolMetrics } from "../metrics/pool_metrics.js";
import type { Logger } from "../log/logger.js";
import { startWorker, type WorkerRole } from "../worker/runner.js";
import type { ExecutionKind } from "../executions/kind.js";
import { buildKindMap } from "../executions/kinds_registry.js";
import { startMaintenance, type Maintenance } from "../executions/maintenance.js";
import { startScheduler, type SchedulerRole } from "../scheduler/scheduler_role.js";
import type { AppContext } from "./context.js";

export interface RunningService {
  ctx: AppContext;
  http?: HttpRole;
  /** Resolves with the exit code once the service has stopped (signal or fatal error). */
  done: Promise<number>;
  stop(reason: string, exitCode?: number): Promise<number>;
}

/**
 * `ebb start`: database (DATABASE_URL or embedded), the one pool, migrations, then the
 * roles. Stopping runs in reverse order: HTTP stops accepting, workers stop claiming and
 * finish (up to shutdownTimeoutMs), the pool closes, the embedded server stops.
 */
export async function startService(
  config: Config,
  logger: Logger,
  opts: { extraKinds?: ExecutionKind[] } = {},
): Promise<RunningService> {
  const kinds = buildKindMap(opts.extraKinds);
  const database = await resolveDatabase(config, logger);
  const pool = createPool({ connectionString: database.url, max: config.poolSize, role: config.roles.join("+") });
  pool.on("error", (err) => logger.warn({ err: err.message }, "idle database connection lost"));
  const closers: (() => Promise<void>)[] = [async () => void (await database.stop())];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch((err) => logger.error({ err }, "error while stopping"));
  };
  let ctx: AppContext;
  try {
    closers.push(() => pool.end());
    if (config.migrate) {
      const result = await migrate(pool, { log: (m) => logger.info(m) });
      logger.info({ applied: result.applied.length }, "migrations current");
    }
    const workerUtils = await makeWorkerUtils({ pgPool: pool, schema: WORKER_SCHEMA });
    closers.push(async () => void (await workerUtils.release()));
    ctx = { config, pool, db: createKysely(pool), workerUtils, logger };
  } catch (err) {
    await closeAll();
    throw err;
  }

  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  let stopping: Promise<number> | undefined;
  let worker: WorkerRole | undefined;
  let http: HttpRole | undefined;
  let scheduler: SchedulerRole | undefined;
  let maintenance: Maintenance | undefined;
  let ingest: Ingest | undefined;

  const stop = (reason: string, exitCode = 0): Promise<number> => {
    stopping ??= (async () => {
      logger.info({ reason }, "stopping");
      await http?.stop().catch((err) => logger.error({ err }, "http stop failed"));
      // buffered pulls are written while the pool is still open
      await ingest?.stop().catch((err) => logger.error({ err }, "ingest stop failed"));
      await scheduler?.stop().catch((err) => logger.error({ err }, "scheduler stop failed"));
      await maintenance?.stop().catch((err) => logger.error({ err }, "maintenance stop failed"));
      await worker?.stop(config.shutdownTimeoutMs).catch((err) => logger.error({ err }, "worker stop failed"));
      await closeAll();
      logger.info({ exitCode }, "stopped");
      resolveDone(exitCode);
      return exitCode;
    })();
    return stopping;
  };
  const onFatal = (err: unknown) => {
    logger.fatal({ err }, "fatal error: the database pool or a worker died");
    void stop("fatal error", 1);
  };

  try {
    if (config.roles.includes("worker")) worker = await startWorker(ctx, onFatal, kinds);
    if (config.roles.includes("scheduler")) scheduler = startScheduler(ctx);
    if (config.roles.includes("scheduler") || config.roles.includes("worker")) maintenance = startMaintenance(ctx);
    if (config.roles.includes("http")) {
      registerPoolMetrics(ctx);
      registerExecutionMetrics(ctx);
      ingest = startIngest(ctx);
      registerIngestMetrics(ingest.counters, ingest.bufferedPulls);
      http = await startHttp(ctx, [registerMetricsRoute, registerApiRoutes, eventsRoute(ingest)]);
    }
  } catch (err) {
    await stop("start failed", 1);
    throw err;
  }
  logger.info({ roles: config.roles, http: http?.url, embedded: database.embedded }, "ebb ready");
  return { ctx, http, done, stop };
}
