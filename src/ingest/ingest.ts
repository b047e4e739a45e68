/**
 * The notifications ingest: validates envelopes, writes pushes and deletes before the
 * registry gets its 2xx, and coalesces pulls in a bounded in-memory buffer flushed in
 * batches - one statement per flush, on an interval and when the buffer reaches
 * eventsFlushBatch entries.
 *
 * Connections: every database use of the ingest (registry lookup, push/delete transaction,
 * pull flush) runs in one serial lane, so the ingest holds at most one pool connection at a
 * time whatever the traffic.
 *
 * Acknowledged = durable (pushes, deletes) or in the buffer that stop() drains (pulls).
 * When the buffer is full the envelope is refused with 503 and the registry retries it.
 */
import pLimit from "p-limit";
import type pg from "pg";
import type { Config } from "../config/schema.js";
import type { DatabaseWeather } from "../db/database_weather.js";
import type { Logger } from "../log/logger.js";
import { classifyEvents, type CatalogChange } from "./catalog_change.js";
import { writeCatalogChanges } from "./catalog_write_sql.js";
import { parseEnvelope } from "./event_schema.js";
import { newIngestCounters, type IngestCounters } from "./ingest_counters.js";
import { flushPulls } from "./pull_flush_sql.js";
import { PullBuffer, type PullEntry } from "./pull_buffer.js";

export type IngestConfig = Pick<
  Config,
  "eventsFlushIntervalMs" | "eventsFlushBatch" | "eventsBufferMax" | "eventsIgnoreUserAgents" | "shutdownTimeoutMs"
>;

export interface IngestDeps {
  pool: pg.Pool;
  config: IngestConfig;
  logger: Pick<Logger, "info" | "warn" | "error">;
  /** the process's database weather: an outage is logged there once, not per failed flush */
  weather?: DatabaseWeather;
}

export type IngestOutcome =
  | { status: 200; accepted: number; ignored: number }
  | { status: 400 | 404; reason: string }
  | { status: 503; reason: string; retryAfterSeconds: number };

export interface Ingest {
  /**
   * Handle one envelope (already parsed JSON) for the registry named `registryName`
   * (ebb.registries.name).
   */
  receive(registryName: string | undefined, body: unknown): Promise<IngestOutcome>;
  /** Write every buffered pull now; resolves false if a flush failed (entries kept). */
  flush(): Promise<boolean>;
  /** Refuse new envelopes (503), stop the timer and drain the buffer (retrying until shutdownTimeoutMs). */
  stop(): Promise<void>;
  readonly counters: IngestCounters;
  /** Coalesced pull entries in memory (waiting + being flushed). */
  bufferedPulls(): number;
}

const REGISTRY_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const REGISTRY_CACHE_MS = 60_000;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function startIngest(deps: IngestDeps): Ingest {
  const { pool, config, logger, weather } = deps;
  const counters = newIngestCounters();
  const buffer = new PullBuffer(config.eventsBufferMax);
  const ignoreUserAgents = config.eventsIgnoreUserAgents.map((s) => s.toLowerCase());
  const lane = pLimit(1); // the ONE connection of the ingest
  const registries = new Map<string, { id: number; until: number }>();
  let stopping = false;
  let flushing: Promise<boolean> | undefined;

  const refuse = (kind: keyof IngestCounters["envelopesRefused"], outcome: IngestOutcome): IngestOutcome => {
    counters.envelopesRefused[kind]++;
    return outcome;
  };
  const unavailable = (reason: string, retryAfterSeconds = 1): IngestOutcome => ({ status: 503, reason, retryAfterSeconds });

  async function registryId(name: string): Promise<number | undefined> {
    const hit = registries.get(name);
    if (hit && hit.until > Date.now()) return hit.id;
    // registries_name_key (unique)
    const r = await lane(() => pool.query<{ id: number }>("select id from ebb.registries where name = $1", [name]));
    const id = r.rows[0]?.id;
    if (id === undefined) registries.delete(name);
    else registries.set(name, { id, until: Date.now() + REGISTRY_CACHE_MS });
    return id;
  }

  async function flushOnce(): Promise<boolean> {
    if (buffer.size === 0) return true;
    const entries = buffer.take();
    try {
      await flushPulls(pool, entries);
      buffer.settle(true);
      counters.flushes++;
      counters.flushedEntries += entries.length;
      counters.lastFlushSize = entries.length;
      counters.maxFlushSize = Math.max(counters.maxFlushSize, entries.length);
      return true;
    } catch (err) {
      buffer.settle(false);
      counters.flushFailures++;
      // an outage is logged once by the weather; the entries wait in the buffer either way
      if (!weather?.report(err, "ingest flush")) {
        logger.warn({ err: message(err), entries: entries.length }, "pull flush failed; entries kept for the next flush");
      }
      return false;
    }
  }

  /** One flush at a time; concurrent callers share it. */
  function requestFlush(): Promise<boolean> {
    flushing ??= lane(flushOnce).finally(() => (flushing = undefined));
    return flushing;
  }

  async function flushAll(): Promise<boolean> {
    if (flushing) await flushing;
    while (buffer.held > 0) {
      if (!(await requestFlush())) return false;
    }
    return true;
  }

  const timer = setInterval(() => void requestFlush(), config.eventsFlushIntervalMs);
  timer.unref();

  async function receive(registryName: string | undefined, body: unknown): Promise<IngestOutcome> {
    if (stopping) return refuse("error", unavailable("ebb is shutting down", 5));
    if (registryName === undefined || registryName === "") {
      return refuse("bad_request", { status: 400, reason: "registry: query parameter required (POST /events?registry=<name>)" });
    }
    if (!REGISTRY_NAME.test(registryName)) {
      return refuse("bad_request", { status: 400, reason: "registry: not a registry name ([a-z0-9][a-z0-9._-]*)" });
    }
    const parsed = parseEnvelope(body);
    if (!parsed.ok) return refuse("bad_request", { status: 400, reason: parsed.reason });
    const classified = classifyEvents(parsed.envelope.events, ignoreUserAgents);
    if (!classified.ok) return refuse("bad_request", { status: 400, reason: classified.reason });

    // during a database outage the one ingest connection may be waiting for the database:
    // refuse at once, the registry retries (an envelope is never half-taken)
    if (weather?.current) return refuse("error", unavailable(`database unavailable (${weather.current.sqlstate})`, 5));
    let regId: number | undefined;
    try {
      regId = await registryId(registryName);
    } catch (err) {
      logger.warn({ err: message(err) }, "events: registry lookup failed");
      return refuse("error", unavailable("database unavailable", 5));
    }
    if (regId === undefined) {
      return refuse("unknown_registry", { status: 404, reason: `registry: no registry named ${JSON.stringify(registryName)} in ebb.registries` });
    }
    const id = regId;

    const pulls: PullEntry[] = [];
    const writes: CatalogChange[] = [];
    for (const c of classified.changes) {
      if (c.kind === "pull") pulls.push({ registryId: id, repository: c.repository, digest: c.digest, tag: c.tag ?? null, at: c.at });
      else writes.push(c);
    }
    const backpressure = () => {
      void requestFlush();
      return refuse("backpressure", unavailable(`pull buffer full (${config.eventsBufferMax} entries); retry`));
    };
    // Fail fast before writing anything when the pulls obviously cannot fit.
    if (pulls.length > 0 && !buffer.fits(pulls)) return backpressure();

    if (writes.length > 0) {
      try {
        const result = await lane(async () => {
          const client = await pool.connect();
          try {
            return await writeCatalogChanges(client, id, writes);
          } finally {
            client.release();
          }
        });
        for (const repo of result.staleRepositories) {
          logger.warn({ registry: registryName, repository: repo }, "index pushed without references: repository STALE until a sync");
        }
      } catch (err) {
        logger.warn({ err: message(err), registry: registryName }, "events: catalog write failed");
        return refuse("error", unavailable("database unavailable", 5));
      }
    }
    // Pulls are buffered after the writes, so a pull never flushes before the push it follows.
    // A refusal here after writes is safe: the registry resends and the writes are idempotent.
    if (stopping) return refuse("error", unavailable("ebb is shutting down", 5));
    if (pulls.length > 0 && !buffer.offer(pulls)) return backpressure();
    if (buffer.size >= config.eventsFlushBatch) void requestFlush();

    counters.envelopesAccepted++;
    for (const c of classified.changes) {
      if (c.kind === "push") counters.eventsAccepted.push++;
      else if (c.kind === "pull") counters.eventsAccepted.pull++;
      else counters.eventsAccepted.delete++;
    }
    const ig = classified.ignored;
    counters.eventsIgnored.blob += ig.blob;
    counters.eventsIgnored.action += ig.action;
    counters.eventsIgnored.user_agent += ig.user_agent;
    return { status: 200, accepted: classified.changes.length, ignored: ig.blob + ig.action + ig.user_agent };
  }

  let stopped: Promise<void> | undefined;
  async function stop(): Promise<void> {
    stopped ??= (async () => {
      stopping = true;
      clearInterval(timer);
      const deadline = Date.now() + config.shutdownTimeoutMs;
      for (;;) {
        if (await flushAll()) break;
        const left = deadline - Date.now();
        if (left <= 0) {
          logger.error({ entries: buffer.held }, "final pull flush failed until the shutdown timeout: these pull times are lost");
          break;
        }
        await new Promise((r) => setTimeout(r, Math.min(500, left)));
      }
      await lane(async () => {}); // let the last write finish
      logger.info({ flushes: counters.flushes, entries: counters.flushedEntries }, "events ingest stopped");
    })();
    return stopped;
  }

  return {
    receive,
    flush: flushAll,
    stop,
    counters,
    bufferedPulls: () => buffer.held,
  };
}
