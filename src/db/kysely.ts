import { Kysely, PostgresDialect } from "kysely";
import type pg from "pg";

/** A kysely instance over the process pool (no pool of its own). */
export function createKysely<DB>(pool: pg.Pool): Kysely<DB> {
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
}
