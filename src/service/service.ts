import { makeWorkerUtils } from "graphile-worker";
import type { Config } from "../config/schema.js";
import { resolveDatabase } from "../db/database.js";
import { createKysely } from "../db/kysely.js";
import { migrate, WORKER_SCHEMA } from "../db/migrate.js";
import { DatabaseWeather } from "../db/database_weather.js";
import { createPool, warmUpPool } from "../db/pool.js";
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

/** A signal arrived while the service was starting: it stopped before it ran (exit 0). */
export class StartupAborted extends Error {
  override name = "StartupAborted";
}

/**
 * Connections a running service keeps open when idle (at most poolSize): LISTEN, a tick or
 * heartbeat and a couple of jobs go on through a storm that finds the server full. The rest
 * open on demand and close after 30 s idle, so processes whose pools together exceed
 * max_connections take turns instead of one holding slots another waits for.
 */
export const WARM_CONNECTIONS = 4;

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
 *
 * While the database refuses connections (too many clients, starting up, not listening)
 * startup keeps trying for databaseWaitMs, then fails with DatabaseUnavailableError naming
 * the reason; once running, every path waits such outages out (ctx.weather). `signal`
 * aborting (SIGTERM/SIGINT during startup) ends startup at once with StartupAborted.
 */
export async function startService(
  config: Config,
  logger: Logger,
  opts: { extraKinds?: ExecutionKind[]; signal?: AbortSignal } = {},
): Promise<RunningService> {
  const kinds = buildKindMap(opts.extraKinds);
  const weather = new DatabaseWeather(logger.child({ component: "database" }));
  weather.limitWaits(Date.now() + config.databaseWaitMs, "EBB_DATABASE_WAIT_MS / --database-wait-ms");
  const onAbort = () => weather.abort(`${String(opts.signal?.reason ?? "signal")} during startup`);
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  const aborted = () => new StartupAborted(`stopped during startup (${String(opts.signal?.reason ?? "signal")})`);
  const database = await resolveDatabase(config, logger);
  const pool = createPool({
    connectionString: database.url, max: config.poolSize, role: config.roles.join("+"),
    weather, min: WARM_CONNECTIONS,
  });
  pool.on("error", (err) => logger.debug({ err: err.message }, "idle database connection lost"));
  const closers: (() => Promise<void>)[] = [async () => void (await database.stop())];
  const closeAll = async () => {
    // waits for the database still under way end now: the pool is about to close
    weather.abort("ebb is stopping");
    for (const close of closers.reverse()) await close().catch((err) => logger.error({ err }, "error while stopping"));
  };
  let ctx: AppContext;
  try {
    closers.push(() => pool.end());
    if (opts.signal?.aborted) throw aborted();
    if (config.migrate) {
      // each migration is its own transaction: a connection lost mid-way is retried whole
      const result = await weather.retry("migrations", () => migrate(pool, { log: (m) => logger.info(m) }));
      logger.info({ applied: result.applied.length }, "migrations current");
    }
    const workerUtils = await weather.retry("worker utils", () => makeWorkerUtils({ pgPool: pool, schema: WORKER_SCHEMA }));
    closers.push(async () => void (await workerUtils.release()));
    ctx = { config, pool, db: createKysely(pool), workerUtils, logger, weather };
    const warm = await warmUpPool(pool, WARM_CONNECTIONS);
    logger.debug({ warm }, "database connections opened ahead");
  } catch (err) {
    await closeAll();
    opts.signal?.removeEventListener("abort", onAbort);
    throw opts.signal?.aborted ? aborted() : err;
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
      // a database outage may not hold the stop longer than the shutdown timeout
      weather.limitWaits(Date.now() + config.shutdownTimeoutMs, "ebb is stopping (EBB_SHUTDOWN_TIMEOUT_MS)");
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
    if (opts.signal?.aborted) throw aborted();
    if (config.roles.includes("scheduler")) scheduler = startScheduler(ctx);
    if (config.roles.includes("scheduler") || config.roles.includes("worker")) maintenance = startMaintenance(ctx);
    if (config.roles.includes("http")) {
      registerPoolMetrics(ctx);
      registerExecutionMetrics(ctx);
      ingest = startIngest(ctx);
      registerIngestMetrics(ingest.counters, ingest.bufferedPulls);
      http = await startHttp(ctx, [registerMetricsRoute, registerApiRoutes, eventsRoute(ingest)]);
    }
    if (opts.signal?.aborted) throw aborted();
  } catch (err) {
    await stop(opts.signal?.aborted ? "signal during startup" : "start failed", opts.signal?.aborted ? 0 : 1);
    throw opts.signal?.aborted ? aborted() : err;
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
  }
  // started: from now on an outage is waited out however long it lasts
  weather.limitWaits(undefined);
  logger.info({ roles: config.roles, http: http?.url, embedded: database.embedded }, "ebb ready");
  return { ctx, http, done, stop };
}
