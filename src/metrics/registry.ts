import { Registry, collectDefaultMetrics } from "prom-client";

/**
 * The process's Prometheus registry. Each part of ebb defines its own metrics next to the
 * code that moves them (ingest, executions, scheduler) and registers them here; /metrics
 * serves this registry.
 */
export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry, prefix: "ebb_process_" });
