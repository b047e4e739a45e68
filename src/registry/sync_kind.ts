/**
 * The 'sync' execution kind: target_id = ebb.registries.id. One task per registry (key
 * "registry:<name>") running syncRegistry: the catalog listing decides which repositories
 * exist, so it is read once, and repositories are synced with bounded concurrency inside
 * the task. Counts: total = repositories, retained = synced (or confirmed gone), errors =
 * repositories left STALE. A failed catalog listing (every repository STALE) fails the task,
 * and so does any repository left STALE: the task error names them and why (details.stale
 * lists up to 100), so `ebb sync --wait` exits non-zero.
 *
 * Scheduled by `ebb sync schedule <registry> --cron ...` or plain SQL (the same scheduler and
 * rules as retention schedules; ebb.sync_schedules lists them by registry name):
 *   insert into ebb.schedules (kind, target_id, cron) values ('sync', $registry_id, '*\/15 * * * *');
 */
import { PermanentTaskError, type ExecutionKind } from "../executions/kind.js";
import { createRegistryClient, readRegistryRecord, RegistryConfigError } from "./client_factory.js";
import type { RegistryClient } from "./client.js";
import { syncRegistry } from "./sync.js";

export interface SyncKindOptions {
  /** repositories read at once within the task (default 4) */
  repositoryConcurrency?: number;
  /** environment holding credentials named by registries.credentials_ref (default process.env) */
  env?: NodeJS.ProcessEnv;
}

/** "2 repositories left STALE: a (reason); b (reason)", a few named in full. */
export function staleSummary(stale: ReadonlyArray<{ repository: string; reason?: string | undefined }>): string {
  const shown = stale.slice(0, 5).map((r) => `${r.repository} (${r.reason ?? "no reason recorded"})`);
  const more = stale.length > shown.length ? `; and ${stale.length - shown.length} more (ebb executions show)` : "";
  return `${stale.length} ${stale.length === 1 ? "repository" : "repositories"} left STALE: ${shown.join("; ")}${more}`;
}

export function syncKind(opts: SyncKindOptions = {}): ExecutionKind {
  return {
    name: "sync",
    async *planTasks(ctx, execution) {
      const record = await readRegistryRecord(ctx.pool, execution.targetId);
      if (!record) throw new PermanentTaskError(`registry ${execution.targetId} does not exist`);
      yield [{ key: `registry:${record.name}`, group: `registry:${record.id}`, payload: { registryId: record.id } }];
    },
    async runTask(ctx, task, control) {
      const registryId = Number(task.payload["registryId"]);
      const record = await readRegistryRecord(ctx.pool, registryId);
      if (!record) throw new PermanentTaskError(`registry ${registryId} does not exist`);
      let client: RegistryClient;
      try {
        client = createRegistryClient(record, { env: opts.env, logger: ctx.logger.child({ component: "registry", registry: record.name }) });
      } catch (err) {
        if (err instanceof RegistryConfigError) throw new PermanentTaskError(err.message);
        throw err;
      }
      try {
        await control.checkpoint();
        const result = await syncRegistry({
          pool: ctx.pool, client, registryId, repositoryConcurrency: opts.repositoryConcurrency,
          logger: {
            info: (obj, msg) => control.log("debug", `${msg} ${JSON.stringify(obj)}`),
            warn: (obj, msg) => control.log("warn", `${msg} ${JSON.stringify(obj)}`),
          },
        });
        const stale = result.repositories.filter((r) => r.status === "stale");
        control.counts.total = result.repositories.length;
        control.counts.retained = result.repositories.length - stale.length;
        control.counts.errors = stale.length;
        control.details["synced"] = result.repositories.filter((r) => r.status === "synced").length;
        control.details["gone"] = result.repositories.filter((r) => r.status === "gone").length;
        control.details["stale"] = stale.slice(0, 100).map((r) => ({ repository: r.repository, reason: r.reason }));
        if (result.catalogError) throw new PermanentTaskError(result.catalogError);
        if (stale.length > 0) throw new PermanentTaskError(staleSummary(stale));
      } finally {
        await client.close().catch(() => {});
      }
    },
  };
}
