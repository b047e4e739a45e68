import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { run, type Runner, type TaskList, type WorkerEvents } from "graphile-worker";
import type pg from "pg";
import { isConnectionError, waitForDatabase } from "../db/database_outage.js";
import { WORKER_SCHEMA } from "../db/migrate.js";
import { Heartbeat } from "../executions/heartbeat.js";
import type { AppContext } from "../service/context.js";
import { graphileLogger } from "./graphile_logger.js";
import { OrphanedJobSweeper } from "./orphaned_jobs.js";

export interface LaneSettings {
  /** for logs: "batched", "one by one" */
  name: string;
  /** the pool graphile-worker uses (ebb's pool, LISTEN shared or left out) */
  pgPool: pg.Pool;
  taskList: TaskList;
  worker: GraphileConfig.WorkerOptions;
  preparedStatements: boolean;
}

/**
 * One graphile-worker runner ("lane", runner.ts) with its heartbeat and orphaned-job sweep,
 * restarted in this process when its worker pool dies with the database connection.
 *
 * graphile-worker 0.17 gives up a worker pool when a batched completion or failure statement
 * fails once (its retry loop rethrows on the first error: "Could not completeJobs; queue is in
 * an inconsistent state; aborting"): a PostgreSQL crash or restart in the middle of a stream
 * of jobs. Then the lane (not the process) is restarted: the dead pool finishes or abandons
 * what it runs, the database is waited for, the dead pool's jobs are unlocked at once (they
 * run again: a task already ended is only finalized, task_job.ts) and a new pool takes over.
 * A pool dying for any other reason is fatal for the process, as before.
 */
export class WorkerLane {
  private runner: Runner | undefined;
  private poolId: string | undefined;
  private heartbeat: Promise<Heartbeat> | undefined;
  private sweeper: OrphanedJobSweeper | undefined;
  private running = new Set<string>();
  private restarting: Promise<void> | undefined;
  private stopping = false;
  private readonly stopSignal = new AbortController();

  constructor(
    private readonly ctx: AppContext,
    private readonly settings: LaneSettings,
    private readonly onFatal: (err: unknown) => void,
  ) {}

  /** Starts the runner; resolves once its pool's first heartbeat is written. */
  async start(): Promise<void> {
    const { ctx, settings } = this;
    const events: WorkerEvents = new EventEmitter();
    // Jobs whose completion or failure graphile-worker lost to a dropped connection stay
    // locked by this live pool: released again after a while (orphaned_jobs.ts).
    const sweeper = new OrphanedJobSweeper(ctx.pool, events, {
      minAgeMs: Math.max(5_000, 3 * ctx.config.heartbeatIntervalMs),
      everyMs: ctx.config.heartbeatIntervalMs,
      onReleased: (jobIds) => ctx.logger.warn({ jobIds, lane: settings.name }, "released jobs this process had locked but no longer ran (their completion or failure was lost with a database connection): they run again"),
      onError: (err) => {
        if (!ctx.weather?.report(err, "orphaned job sweep")) ctx.logger.warn({ err: (err as Error).message, lane: settings.name }, "orphaned job sweep failed");
      },
    });
    this.sweeper = sweeper;
    // jobs of this pool whose handler runs now (a restart waits for them, not for the rest of
    // the dead pool's shutdown: returning its local queue retries for minutes while the
    // database is away, and those jobs are unlocked anyway)
    const running = new Set<string>();
    this.running = running;
    events.on("job:start", ({ job }) => running.add(String(job.id)));
    events.on("job:complete", ({ job }) => running.delete(String(job.id)));
    // Heartbeat per worker pool (jobs are locked by the pool's id in 0.17): crash recovery
    // releases the jobs of a pool whose heartbeat stops (src/executions/recovery.ts).
    let started!: (hb: Heartbeat) => void;
    let failed!: (err: unknown) => void;
    const heartbeat = new Promise<Heartbeat>((resolve, reject) => { started = resolve; failed = reject; });
    events.on("pool:create", ({ workerPool }) => {
      this.poolId = workerPool.id;
      const hb = new Heartbeat(ctx.pool, workerPool.id, ctx.config.heartbeatIntervalMs, (err) => {
        // an outage is logged once by the weather, not per missed beat
        if (!ctx.weather?.report(err, "worker heartbeat")) ctx.logger.warn({ err: (err as Error).message, lane: settings.name }, "worker heartbeat failed");
      });
      hb.start().then(() => started(hb), failed);
      sweeper.start(workerPool.id);
    });
    const runner = await run({
      events,
      pgPool: settings.pgPool,
      noPreparedStatements: ctx.config.databasePooling === "transaction" || !settings.preparedStatements,
      schema: WORKER_SCHEMA,
      concurrency: ctx.config.workerConcurrency,
      noHandleSignals: true,
      pollInterval: ctx.config.workerPollIntervalMs,
      crontab: "", // ebb schedules from its own tables, not a crontab file
      taskList: settings.taskList,
      logger: graphileLogger(ctx.logger),
      preset: { worker: settings.worker },
    });
    this.runner = runner;
    runner.events.on("pool:fatalError", ({ error }) => this.died(runner, error));
    runner.events.on("worker:fatalError", ({ error }) => this.died(runner, error));
    // A runner only ends by itself when its pool gave up.
    runner.promise.then(
      () => this.died(runner, new Error("graphile-worker runner stopped by itself (database pool died)")),
      (err: unknown) => this.died(runner, err),
    );
    this.heartbeat = heartbeat;
    await heartbeat;
  }

  private died(runner: Runner, error: unknown): void {
    if (this.stopping || runner !== this.runner || this.restarting) return;
    if (!isConnectionError(error)) {
      this.onFatal(error);
      return;
    }
    this.restarting = this.restart(runner, error)
      .catch((err: unknown) => { if (!this.stopping) this.onFatal(err); })
      .finally(() => (this.restarting = undefined));
  }

  private async restart(runner: Runner, error: unknown): Promise<void> {
    const { ctx, settings } = this;
    const deadPool = this.poolId;
    ctx.weather?.report(error, `worker lane ${settings.name}`);
    ctx.logger.warn({ lane: settings.name, pool: deadPool, err: (error as Error)?.message },
      "a worker lane's graphile-worker pool died with its database connection: restarting the lane once the database answers");
    // the dead pool's handlers end first (as long as a shutdown may wait for them), so that
    // none of its jobs runs here while it runs again; then the pool is abandoned
    const running = this.running;
    let settled = false;
    void runner.promise.then(() => (settled = true), () => (settled = true));
    for (const end = Date.now() + ctx.config.shutdownTimeoutMs; !settled && running.size > 0 && Date.now() < end;) {
      await sleep(100, undefined, { ref: false });
    }
    if (!settled) await runner.kill("lane restart: its pool died").catch(() => {});
    await this.sweeper?.stop();
    const hb = await this.heartbeat?.catch(() => undefined);
    // the database may go away again while the lane comes back: then wait again
    for (;;) {
      if (!(await waitForDatabase(ctx.pool, { maxMs: Number.MAX_SAFE_INTEGER, signal: this.stopSignal.signal }))) return;
      if (this.stopping) return;
      try {
        // the dead pool's jobs (running when it died, or fetched into its local queue) run again
        if (deadPool) await ctx.pool.query(`select ${WORKER_SCHEMA}.force_unlock_workers($1::text[])`, [[deadPool]]);
        await hb?.stop();
        await this.start();
        break;
      } catch (err) {
        if (!isConnectionError(err)) throw err;
        await this.runner?.kill("lane restart interrupted by the database going away").catch(() => {});
        await this.sweeper?.stop();
      }
    }
    ctx.logger.info({ lane: settings.name, deadPool, pool: this.poolId }, "worker lane restarted: the dead pool's jobs were released and run again");
  }

  /** Stop claiming; let running jobs finish (graceful), or release them (kill). */
  stopRunner(reason: string): Promise<void> {
    this.stopping = true;
    this.stopSignal.abort();
    return this.runner ? this.runner.stop(reason) : Promise.resolve();
  }

  killRunner(reason: string): Promise<void> {
    return this.runner ? this.runner.kill(reason) : Promise.resolve();
  }

  /** After the runner stopped: the sweep, then the heartbeat (removed only now, see stop in runner.ts). */
  async stopBookkeeping(): Promise<void> {
    await this.restarting?.catch(() => {});
    await this.sweeper?.stop();
    const hb = await this.heartbeat?.catch(() => undefined);
    await hb?.stop();
  }

  /** the current runner (replaced by a restart) */
  get current(): Runner {
    return this.runner!;
  }
}
