/**
 * Sync: full reconcile of the catalog with a registry (or one repository of it).
 *
 * Per repository: read what the catalog knows (one short query), read the registry over
 * HTTP with no database connection held (./sync_snapshot.ts), then write everything in one
 * short transaction (./sync_catalog_sql.ts). Every manifest new to the catalog or known only
 * from a push event (artifacts.inspected_at null) is read in full - subject, index children
 * with platforms, config `created` - and marked inspected when written. A repository whose
 * read (including any of those manifest reads) or write fails is marked STALE with the
 * reason and otherwise left as it was (uninspected rows stay uninspected); if the catalog listing itself
 * fails, every repository of the registry is marked STALE and nothing else changes.
 * A repository missing from the listing is only removed when the registry confirms it
 * (tags/list answers NAME_UNKNOWN): an incomplete listing never deletes anything.
 *
 * Which repositories: a registry with an explicit list (registries.repositories) is never
 * asked for /v2/_catalog; its names are read as given and its patterns select among the
 * repositories the catalog already knows (learnt from push notifications or earlier syncs).
 * Without a list, /v2/_catalog and the known repositories; a catalog the registry refuses
 * (401/403/404, as GHCR, Docker Hub and Quay do for ordinary accounts) fails the listing
 * with a message saying how to set the list.
 */
import pLimit from "p-limit";
import type pg from "pg";
import { compileDoublestar, isLiteralGlob } from "../retention/doublestar.js";
import { CatalogUnavailableError, type RegistryClient } from "./client.js";
import { assertRepository } from "./reference.js";
import {
  knownRepositoryNames, markRepositoriesStale, readKnownRepository, readRegistryDiscovery, writeRepositorySnapshot,
  type WriteCounts,
} from "./sync_catalog_sql.js";
import { readRepositorySnapshot } from "./sync_snapshot.js";

export interface SyncLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface SyncDeps {
  pool: pg.Pool;
  client: RegistryClient;
  /** ebb.registries.id */
  registryId: number;
  /** repositories read at once (default 4); HTTP requests are bounded by the client too */
  repositoryConcurrency?: number;
  logger?: SyncLogger;
}

export interface RepositorySyncResult {
  repository: string;
  /** synced: catalog matches the registry; gone: the registry does not have it; stale: failed */
  status: "synced" | "gone" | "stale";
  reason?: string;
  counts?: WriteCounts;
}

export interface RegistrySyncResult {
  registryId: number;
  /** set when the catalog listing failed (every repository then is stale) */
  catalogError?: string;
  repositories: RepositorySyncResult[];
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function syncRepository(deps: SyncDeps, repository: string): Promise<RepositorySyncResult> {
  const { pool, client, registryId, logger } = deps;
  try {
    // a name (from the registry's listing, or asked for) that is no OCI repository name:
    // never used in a request, never stored; reported with the name
    assertRepository(repository);
  } catch (err) {
    const reason = `${message(err)}: not read, not stored`;
    logger?.warn({ registryId, repository, reason }, "repository skipped");
    return { repository, status: "stale", reason };
  }
  const known = await readKnownRepository(pool, registryId, repository);
  let snapshot;
  try {
    snapshot = await readRepositorySnapshot(client, repository, known);
  } catch (err) {
    const reason = `sync could not read the repository: ${message(err)}`;
    await markRepositoriesStale(pool, registryId, [repository], reason);
    logger?.warn({ registryId, repository, reason }, "repository marked stale");
    return { repository, status: "stale", reason };
  }
  try {
    const counts = await writeRepositorySnapshot(pool, registryId, snapshot, {
      onRetry: (attempt, err) => logger?.warn({ registryId, repository, attempt, err: err.message }, "catalog write lost a lock conflict; retrying"),
    });
    logger?.info({ registryId, repository, exists: snapshot.exists, ...counts }, "repository synced");
    return { repository, status: snapshot.exists ? "synced" : "gone", counts };
  } catch (err) {
    const reason = `sync could not write the catalog: ${message(err)}`;
    await markRepositoriesStale(pool, registryId, [repository], reason);
    logger?.warn({ registryId, repository, reason }, "repository marked stale");
    return { repository, status: "stale", reason };
  }
}

/**
 * The repositories a registry's explicit list selects: its literal names, and the known
 * repositories a pattern matches. Throws naming registries.repositories on a bad pattern.
 */
export function selectRepositories(entries: readonly string[], known: readonly string[]): string[] {
  const literals: string[] = [];
  const patterns: RegExp[] = [];
  for (const entry of entries) {
    if (isLiteralGlob(entry)) {
      literals.push(entry);
      continue;
    }
    try {
      patterns.push(compileDoublestar(entry));
    } catch (err) {
      throw new Error(`registries.repositories: ${JSON.stringify(entry)} is not a valid pattern: ${message(err)}`);
    }
  }
  return [...new Set([...literals, ...known.filter((name) => patterns.some((re) => re.test(name)))])].sort();
}

function catalogRefusedMessage(registry: string, err: CatalogUnavailableError): string {
  return `sync could not list the registry's repositories: ${err.message}. Registries such as GHCR, Docker Hub and Quay ` +
    `do not serve /v2/_catalog to ordinary accounts: give ebb the repositories to sync, names or patterns ` +
    `(patterns match repositories ebb already knows, e.g. from push notifications): ` +
    `ebb sync repositories ${registry} team/app 'team/*', or in SQL: ` +
    `update ebb.registries set repositories = '{team/app,team/*}' where name = '${registry}'`;
}

export async function syncRegistry(deps: SyncDeps): Promise<RegistrySyncResult> {
  const { pool, client, registryId, logger } = deps;
  const discovery = await readRegistryDiscovery(pool, registryId);
  const known = await knownRepositoryNames(pool, registryId);
  let names: string[];
  if (discovery?.repositories) {
    try {
      names = selectRepositories(discovery.repositories, known);
    } catch (err) {
      const catalogError = message(err);
      logger?.warn({ registryId, reason: catalogError }, "repository list refused");
      return { registryId, catalogError, repositories: [] };
    }
  } else {
    let listed: string[];
    try {
      listed = await client.listRepositories();
    } catch (err) {
      const catalogError = err instanceof CatalogUnavailableError
        ? catalogRefusedMessage(discovery?.name ?? String(registryId), err)
        : `sync could not list the registry's repositories: ${message(err)}`;
      const marked = await markRepositoriesStale(pool, registryId, undefined, catalogError);
      logger?.warn({ registryId, marked, reason: catalogError }, "every repository marked stale");
      return {
        registryId, catalogError,
        repositories: known.map((repository) => ({ repository, status: "stale", reason: catalogError })),
      };
    }
    names = [...new Set([...listed, ...known])].sort();
  }
  const limit = pLimit(deps.repositoryConcurrency ?? 4);
  const repositories = await Promise.all(names.map((name) => limit(async (): Promise<RepositorySyncResult> => {
    try {
      return await syncRepository(deps, name);
    } catch (err) {
      // even marking it stale failed (database down, or a name the catalog cannot hold)
      const reason = `sync failed: ${message(err)}`;
      logger?.warn({ registryId, repository: name, reason }, "repository sync failed");
      return { repository: name, status: "stale", reason };
    }
  })));
  return { registryId, repositories };
}
