import { syncKind } from "../registry/sync_kind.js";
import { retentionKind } from "../retention/retention_kind.js";
import type { ExecutionKind, KindMap } from "./kind.js";

/**
 * The execution kinds of ebb, registered in one place. The retention and sync kinds are
 * added here (their names exist in ebb.execution_kinds, seeded by the schema).
 */
export function defaultKinds(): ExecutionKind[] {
  return [retentionKind(), syncKind()];
}

/** The kinds a process runs: ebb's own plus extra ones (tests), refusing duplicate names. */
export function buildKindMap(extra: ExecutionKind[] = []): KindMap {
  const map = new Map<string, ExecutionKind>();
  for (const kind of [...defaultKinds(), ...extra]) {
    if (map.has(kind.name)) throw new Error(`execution kind ${kind.name} is registered twice`);
    map.set(kind.name, kind);
  }
  return map;
}
