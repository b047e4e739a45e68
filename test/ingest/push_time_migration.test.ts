// Migration 0016: artifacts whose pushed_at was moved forward by a later push of the same digest
// (a re-tag) get back the earliest push time their tags prove; nothing is moved later.
import assert from "node:assert/strict";
import { cp, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { migrate, MIGRATIONS_DIR } from "../../src/db/migrate.js";
import { freshDatabase } from "../support/db.js";
import { seedRegistry } from "./support/events_server.js";

const T0 = Date.parse("2025-03-01T10:00:00Z");
const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();
const d = (c: string) => `sha256:${c.repeat(64)}`;

test("migration 0016: an artifact's push time becomes its earliest tag push where that is earlier; other rows stay", async (t) => {
  const db = await freshDatabase(t, { migrate: false });
  const early = await mkdtemp(path.join(tmpdir(), "ebb-0016-"));
  t.after(() => rm(early, { recursive: true, force: true }));
  for (const name of (await readdir(MIGRATIONS_DIR)).filter((n) => n < "0016")) await cp(path.join(MIGRATIONS_DIR, name), path.join(early, name));
  await migrate(db.pool, { dir: early });
  const registryId = await seedRegistry(db.pool, "local");
  const repositoryId = (await db.pool.query<{ id: number }>("insert into ebb.repositories (registry_id, name) values ($1, 'team/app') returning id", [registryId])).rows[0]!.id;
  const artifact = (digest: string, pushed: string, source: string) => db.pool.query(
    `insert into ebb.artifacts (repository_id, digest, media_type, size, pushed_at, pushed_at_source, inspected_at)
     values ($1, $2, 'application/vnd.oci.image.manifest.v1+json', 1, $3, $4, now())`, [repositoryId, digest, pushed, source]);
  const tag = (name: string, digest: string, pushed: string | null) => db.pool.query(
    "insert into ebb.tags (repository_id, name, digest, pushed_at) values ($1, $2, $3, $4)", [repositoryId, name, digest, pushed]);
  // built at 0, re-tagged at 30: the old writer had moved the artifact to 30
  await artifact(d("a"), at(30), "event");
  await tag("build-1", d("a"), at(0));
  await tag("release-1", d("a"), at(30));
  // read by sync: its tags have no push time
  await artifact(d("b"), at(5), "sync");
  await tag("build-2", d("b"), null);
  // a tag pushed after the artifact: nothing to correct
  await artifact(d("c"), at(1), "event");
  await tag("build-3", d("c"), at(3));
  // untagged
  await artifact(d("e"), at(7), "event");

  await migrate(db.pool);
  const rows = await db.pool.query<{ digest: string; pushed_at: Date }>("select digest, pushed_at from ebb.artifacts order by digest");
  assert.deepEqual(Object.fromEntries(rows.rows.map((r) => [r.digest, r.pushed_at.toISOString()])), {
    [d("a")]: at(0), [d("b")]: at(5), [d("c")]: at(1), [d("e")]: at(7),
  });
});
