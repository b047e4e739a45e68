// ebb sync <registry> [repository] [--wait] [--json]
// ebb sync schedule|schedules|repositories ... (./sync_settings.ts)
//
// Without a repository: triggers a 'sync' execution of the registry (done by the ebb
// workers, like a scheduled sync) and prints its id; --wait follows it.
// With a repository: this command syncs that one repository itself, right away (a few
// registry requests and one short transaction, the same code as the workers' sync), since a
// sync execution always covers a whole registry. Exit 1 when the repository is left STALE;
// with --wait, exit 1 when the sync leaves any repository STALE (the execution's task error
// names them and why; --json has them under details.stale).
import { RegistryInputError } from "../../registry/errors.js";
import { assertRepository } from "../../registry/reference.js";
import type { Command } from "commander";
import { findRegistry } from "../../executions/execution_queries.js";
import { triggerExecution } from "../../executions/trigger.js";
import { createRegistryClient, readRegistryRecord, RegistryConfigError } from "../../registry/client_factory.js";
import { syncRepository } from "../../registry/sync.js";
import { addDbOptions, withCliContext } from "../cli_session.js";
import { EXIT, UsageError } from "../exit_codes.js";
import { renderJson, writeOut } from "../output/json_output.js";
import { renderRecord } from "../output/table.js";
import { addWaitOptions, reportTriggered, type WaitFlags } from "./run.js";
import { registerSyncSettings } from "./sync_settings.js";

export function registerSync(program: Command): void {
  const cmd = program
    .command("sync")
    .description("read a registry into ebb's catalog: a sync execution of the whole registry, or one repository right now")
    .argument("<registry>", "registry name (or id) in ebb.registries")
    .argument("[repository]", "sync only this repository, in this process, now (e.g. team/app)");
  addWaitOptions(cmd, "sync execution");
  addDbOptions(cmd);
  registerSyncSettings(cmd);
  cmd.action(async (registryRef: string, repository: string | undefined, opts: Record<string, unknown> & WaitFlags) => {
    if (repository !== undefined) {
      try {
        assertRepository(repository);
      } catch (err) {
        if (err instanceof RegistryInputError) throw new UsageError(`repository: ${err.message} (OCI names: lowercase path components, e.g. team/app)`);
        throw err;
      }
    }
    process.exitCode = await withCliContext(opts, async (ctx) => {
      const registry = await findRegistry(ctx.pool, registryRef);
      if (!registry) throw new UsageError(`registry ${registryRef}: no such registry in ebb.registries`);
      if (repository === undefined) {
        const id = await triggerExecution(ctx, { kind: "sync", targetId: registry.id });
        return reportTriggered(ctx, id, opts, `sync of registry ${registry.name} (id ${registry.id})`);
      }
      const record = await readRegistryRecord(ctx.pool, registry.id);
      if (!record) throw new UsageError(`registry ${registryRef}: no such registry in ebb.registries`);
      let client;
      try {
        client = createRegistryClient(record, { logger: ctx.logger.child({ component: "registry", registry: record.name }) });
      } catch (err) {
        if (err instanceof RegistryConfigError) throw new UsageError(err.message);
        throw err;
      }
      try {
        const result = await syncRepository({ pool: ctx.pool, client, registryId: registry.id }, repository);
        const out = { registry: registry.name, ...result };
        await writeOut(opts.json ? renderJson(out) : renderRecord([
          ["registry", registry.name], ["repository", result.repository], ["status", result.status],
          ...(result.reason ? [["reason", result.reason] as [string, string]] : []),
          ...Object.entries(result.counts ?? {}).map(([k, v]) => [k.replace(/_/g, " "), v as number] as [string, number]),
        ], { maxCell: 200 }));
        if (result.status === "stale") process.stderr.write(`ebb: ${repository} is STALE: ${result.reason ?? "see above"}\n`);
        return result.status === "stale" ? EXIT.failure : EXIT.ok;
      } finally {
        await client.close().catch(() => {});
      }
    });
  });
}
