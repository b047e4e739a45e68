// Scheduled syncs and the sync's outcome from the command line, against a real PostgreSQL,
// a real docker-registry (behind a proxy that breaks one repository's tag list) and a real
// `ebb start` process: `ebb sync schedule` sets the schedule (bad input exits 2 naming the
// option), the scheduler fires it, and a sync that leaves a repository STALE ends in error -
// `ebb sync --wait` exits 1 naming the repository and why, in text and in --json.
import assert from "node:assert/strict";
import { test } from "node:test";
import { freshDatabase } from "../support/db.js";
import { spawnEbb } from "../support/ebb_process.js";
import { pushImage } from "../support/oci_push.js";
import { registrySkipReason, startRegistry } from "../support/registry.js";
import { startFaultProxy } from "../support/registry_fault_proxy.js";
import { waitFor } from "../support/wait_for.js";
import { runCli } from "./support/run_cli.js";

test("ebb sync schedule sets, shows and removes a registry's scheduled sync; the scheduler fires it; a STALE repository fails the sync by name", { skip: registrySkipReason(), timeout: 180_000 }, async (t) => {
  const db = await freshDatabase(t);
  const reg = await startRegistry(t);
  const proxy = await startFaultProxy(reg.url);
  t.after(() => proxy.stop());
  // team/broken's tag list answers 400: its sync cannot read it and leaves it STALE
  proxy.inject((_m, p) => p.startsWith("/v2/team/broken/tags/list"), {
    kind: "status", status: 400, body: JSON.stringify({ errors: [{ code: "DENIED", message: "injected" }] }),
  });
  await pushImage(reg, "team/app", { tag: "v1" });
  await pushImage(reg, "team/broken", { tag: "v1" });
  await db.pool.query("insert into ebb.registries (name, base_url) values ('local', $1)", [proxy.url]);
  const env = { DATABASE_URL: db.url };
  const ebb = (...args: string[]) => runCli(args, env);

  const none = await ebb("sync", "schedule", "local");
  assert.equal(none.code, 0, none.stderr);
  assert.match(none.stdout, /registry local has no sync schedule/);

  // bad input: exit 2, the option named, nothing written
  const badCron = await ebb("sync", "schedule", "local", "--cron", "61 * * * *");
  assert.equal(badCron.code, 2);
  assert.match(badCron.stderr, /--cron: cron "61 \* \* \* \*"/);
  const badZone = await ebb("sync", "schedule", "local", "--cron", "0 * * * *", "--timezone", "Mars/Olympus");
  assert.equal(badZone.code, 2);
  assert.match(badZone.stderr, /--timezone: timezone "Mars\/Olympus"/);
  const badSpread = await ebb("sync", "schedule", "local", "--cron", "0 * * * *", "--spread-seconds", "-1");
  assert.equal(badSpread.code, 2);
  assert.match(badSpread.stderr, /--spread-seconds/);
  const noCron = await ebb("sync", "schedule", "local", "--spread-seconds", "30");
  assert.equal(noCron.code, 2);
  assert.match(noCron.stderr, /--cron: registry local has no sync schedule yet/);
  const offAndCron = await ebb("sync", "schedule", "local", "--off", "--cron", "0 * * * *");
  assert.equal(offAndCron.code, 2);
  const noRegistry = await ebb("sync", "schedule", "nope", "--cron", "0 * * * *");
  assert.equal(noRegistry.code, 2);
  assert.match(noRegistry.stderr, /registry nope: no such registry/);
  assert.equal((await db.pool.query("select count(*)::int as n from ebb.schedules")).rows[0].n, 0);

  // every second (6 fields, seconds first), spread 0, misfire skip
  const set = await ebb("sync", "schedule", "local", "--cron", "* * * * * *", "--misfire", "skip", "--json");
  assert.equal(set.code, 0, set.stderr);
  const shown = JSON.parse(set.stdout);
  assert.equal(shown.registry, "local");
  assert.equal(shown.schedule.cron, "* * * * * *");
  assert.equal(shown.schedule.timezone, "UTC");
  assert.equal(shown.schedule.misfire, "skip");
  assert.equal(shown.schedule.spread_seconds, 0);
  // tuning alone keeps the cron
  const tuned = await ebb("sync", "schedule", "local", "--spread-seconds", "1", "--json");
  assert.equal(tuned.code, 0, tuned.stderr);
  assert.equal(JSON.parse(tuned.stdout).schedule.cron, "* * * * * *");
  assert.equal(JSON.parse(tuned.stdout).schedule.spread_seconds, 1);
  const list = await ebb("sync", "schedules");
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /local\s+│?\s*\* \* \* \* \* \*/);

  // the scheduler fires it: a sync execution of this registry, trigger 'schedule'
  const proc = spawnEbb(["start", "--roles", "scheduler,worker"], {
    ...env, EBB_HEARTBEAT_INTERVAL_MS: "500", EBB_STOP_CHECK_INTERVAL_MS: "100",
  });
  t.after(() => proc.child.kill("SIGTERM"));
  await proc.waitForLog((l) => l.msg === "ebb ready", 60_000);
  const fired = await waitFor("a scheduled sync to end", async () => (await db.pool.query(
    `select e.id, e.status, e.trigger, t.error, t.details from ebb.executions e join ebb.tasks t on t.execution_id = e.id
      where e.kind = 'sync' and e.trigger = 'schedule' and e.status in ('success', 'error') order by e.id limit 1`)).rows[0], 60_000, 200);
  assert.equal(fired.status, "error", "a sync that leaves a repository STALE ends in error");
  assert.match(fired.error, /1 repository left STALE: team\/broken \(sync could not read the repository: .*HTTP 400 DENIED/);
  const synced = await db.pool.query("select t.name from ebb.tags t join ebb.repositories r on r.id = t.repository_id where r.name = 'team/app'");
  assert.deepEqual(synced.rows, [{ name: "v1" }], "the scheduled sync read team/app");

  const off = await ebb("sync", "schedule", "local", "--off");
  assert.equal(off.code, 0, off.stderr);
  assert.match(off.stdout, /removed the sync schedule of registry local/);
  assert.match((await ebb("sync", "schedules")).stdout, /no scheduled syncs/);

  // a manual sync, waited for: exit 1, the STALE repository named with its reason
  const waited = await ebb("sync", "local", "--wait", "--worker-timeout", "60");
  assert.equal(waited.code, 1, waited.stdout);
  assert.match(waited.stderr, /ended in error: 1 repository left STALE: team\/broken \(sync could not read the repository/);
  const json = await ebb("sync", "local", "--wait", "--json", "--worker-timeout", "60");
  assert.equal(json.code, 1, json.stderr);
  const detail = JSON.parse(json.stdout);
  assert.equal(detail.execution.status, "error");
  const task = detail.tasks[0];
  assert.match(task.error, /team\/broken/);
  assert.deepEqual(task.details.stale.map((s: { repository: string }) => s.repository), ["team/broken"]);
  assert.match(task.details.stale[0].reason, /HTTP 400/);

  // the repository list of a registry without a catalog, from the command line
  const setList = await ebb("sync", "repositories", "local", "team/app", "team/*", "--json");
  assert.equal(setList.code, 0, setList.stderr);
  assert.deepEqual(JSON.parse(setList.stdout).repositories, ["team/app", "team/*"]);
  const badEntry = await ebb("sync", "repositories", "local", "Team/App");
  assert.equal(badEntry.code, 2);
  assert.match(badEntry.stderr, /entries.*"Team\/App"/);
  const badPattern = await ebb("sync", "repositories", "local", "team/[x");
  assert.equal(badPattern.code, 2);
  assert.match(badPattern.stderr, /"team\/\[x": not a valid pattern/);
  const back = await ebb("sync", "repositories", "local", "--catalog");
  assert.equal(back.code, 0, back.stderr);
  assert.match(back.stdout, /repositories listed with \/v2\/_catalog/);

  // deleting the registry deletes its schedule
  await ebb("sync", "schedule", "local", "--cron", "0 * * * *");
  await db.pool.query("delete from ebb.registries where name = 'local'");
  assert.equal((await db.pool.query("select count(*)::int as n from ebb.schedules where kind = 'sync'")).rows[0].n, 0);
});
