import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, test } from "node:test";
import { adminQuery, databaseUrl } from "../support/db.js";
import { runEbb, spawnEbb } from "../support/ebb_process.js";

// The documented least-privilege setup (README "Database role"): a plain login role that is
// not a superuser, cannot create databases or roles, and owns only ebb's database.
test("ebb migrates and runs as a non-superuser role that only owns its database", async () => {
  const suffix = randomBytes(4).toString("hex");
  const role = `ebb_app_${suffix}`;
  const dbName = `ebb_lp_${suffix}`;
  const password = randomBytes(12).toString("hex");
  await adminQuery(`create role ${role} login nosuperuser nocreatedb nocreaterole noreplication password '${password}'`);
  await adminQuery(`create database ${dbName} owner ${role}`);
  // PostgreSQL 15+ no longer grants CREATE on schema public to everyone; ebb does not need it.
  after(async () => {
    await adminQuery(`drop database if exists ${dbName} with (force)`);
    await adminQuery(`drop role if exists ${role}`);
  });
  const u = new URL(databaseUrl(dbName));
  u.username = role;
  u.password = password;

  const migrate = await runEbb(["migrate", "--database-url", u.toString()]);
  assert.equal(migrate.code, 0, migrate.stderr);
  const { rows } = await adminQuery(`select rolsuper from pg_roles where rolname = $1`, [role]);
  assert.equal(rows[0].rolsuper, false);

  const ebb = spawnEbb(["start", "--database-url", u.toString(), "--http-port", "0", "--no-migrate", "--pool-size", "3", "--worker-concurrency", "2"]);
  const ready = await ebb.waitForReady();
  assert.equal((await fetch(`${ready.http}/readyz`)).status, 200);
  ebb.child.kill("SIGTERM");
  assert.equal((await ebb.exited).code, 0, ebb.stderr());
  assert.doesNotMatch(ebb.stderr() + migrate.stderr, new RegExp(password), "the password is never logged");
});
