import assert from "node:assert/strict";
import { test } from "node:test";
import { loadConfig } from "../../src/config/load.js";
import { createLogger } from "../../src/log/logger.js";
import { startService } from "../../src/service/service.js";
import { freshDatabase } from "../support/db.js";
import { startTcpProxy } from "../support/tcp_proxy.js";
import { waitFor } from "../support/wait_for.js";

/** Every sample line of a Prometheus text exposition: name{labels} value */
const SAMPLE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$/;

test("/readyz flips to 503 when the database goes away and back to 200 when it returns; /metrics is Prometheus text", async () => {
  const db = await freshDatabase();
  const target = new URL(db.url);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  const viaProxy = new URL(db.url);
  viaProxy.port = String(proxy.port);
  const config = loadConfig({}, { databaseUrl: viaProxy.toString(), httpPort: 0, poolSize: 4, workerConcurrency: 2, roles: "http" });
  const service = await startService(config, createLogger("silent"));
  try {
    const url = service.http!.url;
    assert.equal((await fetch(`${url}/readyz`)).status, 200);

    proxy.cut();
    const down = await fetch(`${url}/readyz`);
    assert.equal(down.status, 503);
    assert.match((await down.json()).reason, /^database: /);
    assert.equal((await fetch(`${url}/healthz`)).status, 200, "the process itself is still healthy");

    proxy.restore();
    await waitFor("/readyz 200 again once the database is back", async () => (await fetch(`${url}/readyz`)).status === 200, 60_000, 100);

    const res = await fetch(`${url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const samples = text.split("\n").filter((l) => l && !l.startsWith("#"));
    for (const line of samples) assert.match(line, SAMPLE, `not a Prometheus sample: ${line}`);
    assert.ok(samples.includes('ebb_pool_connections{state="size"} 4'), text);
    assert.ok(samples.some((l) => l.startsWith('ebb_job_queue_depth{state="ready"} ')));
  } finally {
    await service.stop("test over");
    await proxy.close();
  }
});
