// Samples pg_stat_activity every ~50 ms on its own connection (application_name
// bench:sampler, excluded from the counts) and keeps the peak number of server connections
// per application_name, for one database. "Peak connections of ebb" = the peak of the sum
// over application names like 'ebb:%' at one sample, and also the peak per name.
import pg from "pg";

export interface ConnectionPeaks {
  /** highest sum over ebb:* names seen in one sample */
  ebbTotal: number;
  /** highest count seen per application_name */
  byApplication: Record<string, number>;
  /** highest count of every connection to the database (all names, sampler excluded) */
  allTotal: number;
  samples: number;
}

export interface ConnectionSampler {
  /** Stop sampling and return the peaks. */
  stop(): Promise<ConnectionPeaks>;
  /** Peaks so far (sampling continues). */
  peaks(): ConnectionPeaks;
}

export async function startConnectionSampler(
  serverUrl: string,
  database: string,
  opts: { intervalMs?: number; ebbPattern?: RegExp } = {},
): Promise<ConnectionSampler> {
  const intervalMs = opts.intervalMs ?? 50;
  const ebbPattern = opts.ebbPattern ?? /^ebb:/;
  const client = new pg.Client({ connectionString: serverUrl, application_name: "bench:sampler" });
  client.on("error", () => {});
  await client.connect();
  const peaks: ConnectionPeaks = { ebbTotal: 0, byApplication: {}, allTotal: 0, samples: 0 };
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = Date.now();
      const { rows } = await client.query<{ app: string; n: number }>(
        `select coalesce(application_name, '') as app, count(*)::int as n
         from pg_stat_activity
         where datname = $1 and pid <> pg_backend_pid()
         group by 1`,
        [database],
      );
      let ebb = 0;
      let all = 0;
      for (const r of rows) {
        all += r.n;
        if (ebbPattern.test(r.app)) ebb += r.n;
        if ((peaks.byApplication[r.app] ?? 0) < r.n) peaks.byApplication[r.app] = r.n;
      }
      peaks.ebbTotal = Math.max(peaks.ebbTotal, ebb);
      peaks.allTotal = Math.max(peaks.allTotal, all);
      peaks.samples++;
      const wait = intervalMs - (Date.now() - started);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  return {
    peaks: () => structuredClone(peaks),
    async stop() {
      running = false;
      await loop.catch(() => {});
      await client.end().catch(() => {});
      return structuredClone(peaks);
    },
  };
}
