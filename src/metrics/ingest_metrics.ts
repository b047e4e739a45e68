import { Gauge } from "prom-client";
import type { IngestCounters } from "../ingest/ingest_counters.js";
import { metricsRegistry } from "./registry.js";

const NAMES = [
  "ebb_ingest_envelopes_total",
  "ebb_ingest_events_total",
  "ebb_ingest_pull_flushes_total",
  "ebb_ingest_pull_flush_entries",
  "ebb_ingest_buffered_pulls",
] as const;

/**
 * The notifications ingest's counters, read at scrape time. They are monotonic counts kept
 * by the ingest itself, exposed as gauges so a restarted process starts from zero as
 * Prometheus counters do.
 */
export function registerIngestMetrics(counters: IngestCounters, bufferedPulls: () => number): void {
  for (const name of NAMES) metricsRegistry.removeSingleMetric(name);
  const registers = [metricsRegistry];
  new Gauge({
    name: "ebb_ingest_envelopes_total",
    help: "notification envelopes answered, by outcome (accepted, or the refusal)",
    labelNames: ["outcome"],
    registers,
    collect() {
      this.set({ outcome: "accepted" }, counters.envelopesAccepted);
      for (const [outcome, n] of Object.entries(counters.envelopesRefused)) this.set({ outcome }, n);
    },
  });
  new Gauge({
    name: "ebb_ingest_events_total",
    help: "registry events by action (push, pull, delete applied; ignored ones by reason)",
    labelNames: ["action", "result"],
    registers,
    collect() {
      for (const [action, n] of Object.entries(counters.eventsAccepted)) this.set({ action, result: "accepted" }, n);
      for (const [reason, n] of Object.entries(counters.eventsIgnored)) this.set({ action: reason, result: "ignored" }, n);
    },
  });
  new Gauge({
    name: "ebb_ingest_pull_flushes_total",
    help: "pull flush statements by result",
    labelNames: ["result"],
    registers,
    collect() {
      this.set({ result: "ok" }, counters.flushes);
      this.set({ result: "failed" }, counters.flushFailures);
    },
  });
  new Gauge({
    name: "ebb_ingest_pull_flush_entries",
    help: "coalesced pull entries written: in total, by the last flush and by the largest",
    labelNames: ["which"],
    registers,
    collect() {
      this.set({ which: "total" }, counters.flushedEntries);
      this.set({ which: "last" }, counters.lastFlushSize);
      this.set({ which: "max" }, counters.maxFlushSize);
    },
  });
  new Gauge({
    name: "ebb_ingest_buffered_pulls",
    help: "distinct pulls waiting in memory for the next flush",
    registers,
    collect() {
      this.set(bufferedPulls());
    },
  });
}
