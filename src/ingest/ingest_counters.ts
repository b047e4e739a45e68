/**
 * Plain counters of the notifications ingest, for logs and for export to prom-client by
 * whoever owns /metrics (e.g. a collect() callback reading these fields).
 */
export interface IngestCounters {
  /** envelopes answered 2xx */
  envelopesAccepted: number;
  /** manifest events applied or buffered, by action */
  eventsAccepted: { push: number; pull: number; delete: number };
  /** events that are not catalog changes: blob traffic, unknown actions, ignored user agents */
  eventsIgnored: { blob: number; action: number; user_agent: number };
  /** envelopes refused, by answer */
  envelopesRefused: { unauthorized: number; too_large: number; bad_request: number; unknown_registry: number; backpressure: number; error: number };
  /** pull flush statements that committed / failed (failed entries are kept and retried) */
  flushes: number;
  flushFailures: number;
  /** coalesced pull entries written, in total and by the last and largest flush */
  flushedEntries: number;
  lastFlushSize: number;
  maxFlushSize: number;
}

export function newIngestCounters(): IngestCounters {
  return {
    envelopesAccepted: 0,
    eventsAccepted: { push: 0, pull: 0, delete: 0 },
    eventsIgnored: { blob: 0, action: 0, user_agent: 0 },
    envelopesRefused: { unauthorized: 0, too_large: 0, bad_request: 0, unknown_registry: 0, backpressure: 0, error: 0 },
    flushes: 0,
    flushFailures: 0,
    flushedEntries: 0,
    lastFlushSize: 0,
    maxFlushSize: 0,
  };
}
