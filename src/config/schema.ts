import { readFileSync } from "node:fs";
import { z } from "zod";

/** The roles one ebb process can run. `ebb start --roles` picks a subset. */
export const ROLES = ["scheduler", "worker", "http"] as const;
export type Role = (typeof ROLES)[number];

/**
 * How DATABASE_URL reaches PostgreSQL. `direct`: a server session per connection (or
 * PgBouncer in session mode). `transaction`: PgBouncer (or any pooler) in transaction mode,
 * where a connection's server session can change after every transaction: no named
 * prepared statements and no LISTEN, workers poll every workerPollIntervalMs.
 */
export const POOLING_MODES = ["direct", "transaction"] as const;
export type PoolingMode = (typeof POOLING_MODES)[number];

const intFrom = (min: number, max: number) =>
  z.coerce
    .number({ error: "must be a number" })
    .int({ error: "must be a whole number" })
    .min(min, { error: `must be >= ${min}` })
    .max(max, { error: `must be <= ${max}` });

const bool = z
  .union([z.boolean(), z.enum(["true", "false", "1", "0", "yes", "no"])])
  .transform((v) => v === true || v === "true" || v === "1" || v === "yes");

const roles = z
  .union([z.array(z.string()), z.string()])
  .transform((v) => (Array.isArray(v) ? v : v.split(",")).map((r) => r.trim()).filter(Boolean))
  .pipe(
    z
      .array(z.enum(ROLES, { error: `must be one of ${ROLES.join(", ")}` }))
      .min(1, { error: "needs at least one role" }),
  );

/**
 * Every setting of ebb. Each key has exactly one env var and one flag (see SETTINGS).
 * The README's configuration table is checked against this list by a test.
 */
/**
 * Jobs run at once by a worker process when not set (and the pool allows it). 8, not 4: the
 * jobs running side by side share their bookkeeping statements (src/db/coalesced_statement.ts),
 * so more of them cost few more statements or connections; the midnight storm ran 908 jobs/s
 * at 4 and 1,249 at 8 (BENCHMARKS.md).
 */
export const DEFAULT_WORKER_CONCURRENCY = 8;

/**
 * Why a DATABASE_URL cannot be used, or null. The message never repeats the URL: it holds
 * the password.
 */
export function databaseUrlProblem(url: string): string | null {
  if (!/^postgres(ql)?:\/\//.test(url)) return "must be a postgres:// URL";
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return "is not a valid URL (check the host, a port between 1 and 65535, brackets around an IPv6 address, and percent-encode special characters in the user and password)";
  }
  if (u.port === "0") return "port must be between 1 and 65535";
  try {
    decodeURIComponent(u.username);
    decodeURIComponent(u.password);
    decodeURIComponent(u.pathname);
  } catch {
    return "has a malformed percent-encoding (%XX) in the user, password or database name";
  }
  return null;
}

/** Addresses that only this machine reaches. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Each token setting and the setting naming a file that holds it instead. */
const TOKEN_FILES = [
  ["apiToken", "apiTokenFile"],
  ["metricsToken", "metricsTokenFile"],
  ["eventsToken", "eventsTokenFile"],
] as const;

const token = z
  .string()
  .min(16, { error: "must be at least 16 characters (e.g. openssl rand -hex 32)" })
  .refine((t) => !/\s/.test(t), { error: "must not contain white space" });

export const configSchema = z
  .object({
    databaseUrl: z
      .string()
      .superRefine((url, ctx) => {
        const problem = databaseUrlProblem(url);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      })
      .optional(),
    dataDir: z.string().min(1).default(".ebb"),
    embeddedPort: intFrom(1, 65535).default(54329),
    poolSize: intFrom(2, 500).default(10),
    databasePooling: z
      .enum(POOLING_MODES, { error: `must be one of ${POOLING_MODES.join(", ")}` })
      .default("direct"),
    roles: roles.default([...ROLES]),
    migrate: bool.default(true),
    httpHost: z.string().min(1).default("127.0.0.1"),
    httpPort: intFrom(0, 65535).default(8080),
    api: bool.default(true),
    apiToken: token.optional(),
    apiTokenFile: z.string().min(1).optional(),
    metricsToken: token.optional(),
    metricsTokenFile: z.string().min(1).optional(),
    // default: DEFAULT_WORKER_CONCURRENCY, at most poolSize - 1 (filled in below)
    workerConcurrency: intFrom(1, 200).optional(),
    workerLocalQueueSize: intFrom(1, 1000).default(20),
    workerPollIntervalMs: intFrom(50, 600_000).default(1000),
    workerAsyncCommit: bool.default(true),
    shutdownTimeoutMs: intFrom(0, 3_600_000).default(30_000),
    databaseWaitMs: intFrom(0, 86_400_000).default(300_000),
    logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    schedulerIntervalMs: intFrom(100, 60_000).default(1000),
    misfireGraceMs: intFrom(1000, 86_400_000).default(60_000),
    heartbeatIntervalMs: intFrom(100, 600_000).default(10_000),
    deadWorkerTimeoutMs: intFrom(1000, 86_400_000).default(60_000),
    taskGroupConcurrency: intFrom(1, 1000).default(4),
    stopCheckIntervalMs: intFrom(10, 60_000).default(1000),
    historyKeepLast: intFrom(1, 1_000_000).default(50),
    historyKeepDays: intFrom(0, 36_500).default(30),
    eventsToken: z.string().min(1).optional(),
    eventsTokenFile: z.string().min(1).optional(),
    eventsMaxPerEnvelope: intFrom(1, 100_000).default(1000),
    eventsBodyLimitBytes: intFrom(1024, 64 * 1024 * 1024).default(1_048_576),
    eventsFlushIntervalMs: intFrom(10, 60_000).default(1000),
    eventsFlushBatch: intFrom(1, 10_000_000).default(5000),
    eventsBufferMax: intFrom(1, 10_000_000).default(100_000),
    eventsIgnoreUserAgents: z
      .union([z.array(z.string()), z.string()])
      .transform((v) => (Array.isArray(v) ? v : v.split(",")).map((s) => s.trim()).filter(Boolean))
      .default([]),
  })
  .transform((c, ctx) => {
    const out = { ...c, workerConcurrency: c.workerConcurrency ?? Math.min(DEFAULT_WORKER_CONCURRENCY, c.poolSize - 1) };
    for (const [tokenKey, fileKey] of TOKEN_FILES) {
      const file = c[fileKey];
      if (file === undefined) continue;
      const fail = (message: string) => ctx.issues.push({ code: "custom", path: [fileKey], message, input: file });
      if (c[tokenKey] !== undefined) {
        fail(`give the token or a file holding it, not both (${SETTINGS[tokenKey].env} is set too)`);
        continue;
      }
      let text: string;
      try {
        text = readFileSync(file, "utf8").replace(/\r?\n$/, "");
      } catch (err) {
        fail(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        continue;
      }
      const checked = tokenKey === "eventsToken" ? z.string().min(1, { error: "is empty" }).safeParse(text) : token.safeParse(text);
      if (checked.success) out[tokenKey] = checked.data;
      else fail(`the token in ${file} ${checked.error.issues[0]!.message}`);
    }
    return out;
  })
  .superRefine((c, ctx) => {
    // graphile-worker holds one pool client for LISTEN; jobs need the rest.
    if (c.roles.includes("worker") && c.workerConcurrency > c.poolSize - 1) {
      ctx.addIssue({
        code: "custom",
        path: ["workerConcurrency"],
        message: `must be at most poolSize - 1 (${c.poolSize - 1}): one pool connection is kept for LISTEN`,
      });
    }
    if (c.eventsFlushBatch > c.eventsBufferMax) {
      ctx.addIssue({
        code: "custom",
        path: ["eventsFlushBatch"],
        message: `must be at most eventsBufferMax (${c.eventsBufferMax}): the buffer would refuse pulls before a size flush`,
      });
    }
    if (c.deadWorkerTimeoutMs < 2 * c.heartbeatIntervalMs) {
      ctx.addIssue({
        code: "custom",
        path: ["deadWorkerTimeoutMs"],
        message: `must be at least twice heartbeatIntervalMs (${2 * c.heartbeatIntervalMs}): a live worker would be declared dead`,
      });
    }
  });

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/** Where each setting comes from: env var and CLI flag, with a one-line description. */
export const SETTINGS: Record<keyof ConfigInput, { env: string; flag: string; doc: string; secret?: true }> = {
  databaseUrl: { env: "DATABASE_URL", flag: "--database-url <url>", doc: "PostgreSQL URL; unset = embedded PostgreSQL in dataDir", secret: true },
  dataDir: { env: "EBB_DATA_DIR", flag: "--data-dir <dir>", doc: "embedded PostgreSQL data directory (default .ebb)" },
  embeddedPort: { env: "EBB_EMBEDDED_PORT", flag: "--embedded-port <port>", doc: "port of the embedded PostgreSQL (default 54329)" },
  poolSize: { env: "EBB_POOL_SIZE", flag: "--pool-size <n>", doc: "connections in the one pg.Pool of this process, LISTEN included (default 10)" },
  databasePooling: { env: "EBB_DATABASE_POOLING", flag: "--database-pooling <mode>", doc: "direct, or transaction when DATABASE_URL is PgBouncer in transaction mode: no prepared statements, no LISTEN, workers poll (default direct)" },
  roles: { env: "EBB_ROLES", flag: "--roles <list>", doc: "comma list of scheduler,worker,http (default all)" },
  migrate: { env: "EBB_MIGRATE", flag: "--no-migrate", doc: "run migrations at start (default true)" },
  httpHost: { env: "EBB_HTTP_HOST", flag: "--http-host <host>", doc: "HTTP bind address (default 127.0.0.1, loopback only)" },
  httpPort: { env: "EBB_HTTP_PORT", flag: "--http-port <port>", doc: "HTTP port, 0 = any free port (default 8080)" },
  api: { env: "EBB_API", flag: "--no-api", doc: "serve the JSON API under /api/ (default true)" },
  apiToken: { env: "EBB_API_TOKEN", flag: "--api-token <token>", doc: "bearer token /api/* requires (16 characters at least); unset = /api/* refuses every request (401), and ebb refuses to start on a non-loopback EBB_HTTP_HOST unless the API is off", secret: true },
  apiTokenFile: { env: "EBB_API_TOKEN_FILE", flag: "--api-token-file <file>", doc: "file holding the API token (instead of EBB_API_TOKEN)" },
  metricsToken: { env: "EBB_METRICS_TOKEN", flag: "--metrics-token <token>", doc: "bearer token /metrics requires (16 characters at least); unset = /metrics open", secret: true },
  metricsTokenFile: { env: "EBB_METRICS_TOKEN_FILE", flag: "--metrics-token-file <file>", doc: "file holding the metrics token (instead of EBB_METRICS_TOKEN)" },
  workerConcurrency: { env: "EBB_WORKER_CONCURRENCY", flag: "--worker-concurrency <n>", doc: "jobs run at once by this process (default 8, or poolSize - 1 when smaller; at most poolSize - 1)" },
  workerLocalQueueSize: { env: "EBB_WORKER_LOCAL_QUEUE_SIZE", flag: "--worker-local-queue-size <n>", doc: "plan jobs and ungrouped tasks (dry runs) fetched and locked per database round trip, completed in batches; tasks limited per registry are always fetched one at a time; 1 = one at a time for all (default 20)" },
  workerPollIntervalMs: { env: "EBB_WORKER_POLL_INTERVAL_MS", flag: "--worker-poll-interval-ms <ms>", doc: "how often an idle worker looks for jobs; with LISTEN (direct pooling) new jobs wake it at once, in transaction pooling this is the pickup delay (default 1000)" },
  workerAsyncCommit: { env: "EBB_WORKER_ASYNC_COMMIT", flag: "--no-worker-async-commit", doc: "task claims, task ends, plan batches and dry-run decisions commit without waiting for the WAL flush (synchronous_commit off for those transactions only): a PostgreSQL crash can undo the last moments of that bookkeeping, which is then redone; decisions of runs that delete, deletion outcomes and catalog writes always wait (default true)" },
  shutdownTimeoutMs: { env: "EBB_SHUTDOWN_TIMEOUT_MS", flag: "--shutdown-timeout-ms <ms>", doc: "how long running jobs may finish after SIGTERM (default 30000)" },
  databaseWaitMs: { env: "EBB_DATABASE_WAIT_MS", flag: "--database-wait-ms <ms>", doc: "at start, how long to keep trying while the database refuses or drops connections (too many clients, starting up, not listening) before exiting 1 with the reason; once running, ebb waits out such outages however long (default 300000)" },
  logLevel: { env: "EBB_LOG_LEVEL", flag: "--log-level <level>", doc: "pino level (default info)" },
  schedulerIntervalMs: { env: "EBB_SCHEDULER_INTERVAL_MS", flag: "--scheduler-interval-ms <ms>", doc: "scheduler tick period (default 1000)" },
  misfireGraceMs: { env: "EBB_MISFIRE_GRACE_MS", flag: "--misfire-grace-ms <ms>", doc: "a cron slot later than this is a misfire, handled by the schedule's misfire policy (default 60000)" },
  heartbeatIntervalMs: { env: "EBB_HEARTBEAT_INTERVAL_MS", flag: "--heartbeat-interval-ms <ms>", doc: "worker heartbeat and crash-recovery period (default 10000)" },
  deadWorkerTimeoutMs: { env: "EBB_DEAD_WORKER_TIMEOUT_MS", flag: "--dead-worker-timeout-ms <ms>", doc: "a worker silent this long is dead: its jobs run again elsewhere (default 60000)" },
  taskGroupConcurrency: { env: "EBB_TASK_GROUP_CONCURRENCY", flag: "--task-group-concurrency <n>", doc: "tasks of one group running at once, cluster-wide: repositories of one registry being deleted from, syncs of one registry (default 4; dry runs call no registry and are not limited)" },
  stopCheckIntervalMs: { env: "EBB_STOP_CHECK_INTERVAL_MS", flag: "--stop-check-interval-ms <ms>", doc: "how often a running task asks the database whether its execution must stop; with LISTEN (direct pooling) a stop is heard at once and this is the fallback (default 1000)" },
  historyKeepLast: { env: "EBB_HISTORY_KEEP_LAST", flag: "--history-keep-last <n>", doc: "executions kept per policy/target whatever their age (default 50)" },
  historyKeepDays: { env: "EBB_HISTORY_KEEP_DAYS", flag: "--history-keep-days <n>", doc: "executions younger than this are kept whatever their number (default 30)" },
  eventsToken: { env: "EBB_EVENTS_TOKEN", flag: "--events-token <token>", doc: "bearer token registries must send to POST /events; unset = every event is refused (401)", secret: true },
  eventsTokenFile: { env: "EBB_EVENTS_TOKEN_FILE", flag: "--events-token-file <file>", doc: "file holding the events token (instead of EBB_EVENTS_TOKEN)" },
  eventsMaxPerEnvelope: { env: "EBB_EVENTS_MAX_PER_ENVELOPE", flag: "--events-max-per-envelope <n>", doc: "most events in one notification envelope, more = 413 before any is validated (default 1000)" },
  eventsBodyLimitBytes: { env: "EBB_EVENTS_BODY_LIMIT_BYTES", flag: "--events-body-limit-bytes <n>", doc: "largest notification envelope accepted, larger = 413 (default 1048576)" },
  eventsFlushIntervalMs: { env: "EBB_EVENTS_FLUSH_INTERVAL_MS", flag: "--events-flush-interval-ms <ms>", doc: "how often coalesced pulls are written to the catalog (default 1000)" },
  eventsFlushBatch: { env: "EBB_EVENTS_FLUSH_BATCH", flag: "--events-flush-batch <n>", doc: "flush early once this many distinct pulls are buffered (default 5000)" },
  eventsBufferMax: { env: "EBB_EVENTS_BUFFER_MAX", flag: "--events-buffer-max <n>", doc: "distinct pulls held in memory; beyond it new pulls get 503 + Retry-After (default 100000)" },
  eventsIgnoreUserAgents: { env: "EBB_EVENTS_IGNORE_USER_AGENTS", flag: "--events-ignore-user-agents <list>", doc: "comma list of user-agent substrings (case-insensitive) whose pulls are not use, e.g. Trivy,Clair (default none; ebb's own requests, user agent ebb/<version>, are never use whatever this says)" },
};
