// Bad input refused clearly, end to end: crons that can never run (a value out of range, a
// date that never comes) at policy create/import and in SQL, invalid schedules named by
// `ebb policy list` and `ebb status`, a malformed DATABASE_URL, a NUL character in a policy.
// Each is exit 2 with the field named, no stack trace, no secret echoed, nothing written.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { schedulerTick } from "../../src/scheduler/tick.js";
import { freshDatabase } from "../support/db.js";
import { runEbb } from "../support/ebb_process.js";
import { runCli } from "./support/run_cli.js";

const db = await freshDatabase();
const env = { DATABASE_URL: db.url };
await db.pool.query("insert into ebb.registries (name, base_url) values ('local', 'http://127.0.0.1:5999')");
const dir = await mkdtemp(join(tmpdir(), "ebb-bad-input-"));
after(() => rm(dir, { recursive: true, force: true }));
const policyFile = join(dir, "keep.json");
await writeFile(policyFile, JSON.stringify({ name: "keep", rules: [{ template: "latestPushedK", params: { latestPushedK: 3 } }] }));
const harbor = (cron: string) => JSON.stringify({
  algorithm: "or", scope: { level: "project", ref: 7 }, trigger: { kind: "Schedule", settings: { cron } },
  rules: [{ action: "retain", template: "latestPushedK", params: { latestPushedK: 3 }, tag_selectors: [{ kind: "doublestar", decoration: "matches", pattern: "**" }], scope_selectors: { repository: [{ kind: "doublestar", decoration: "repoMatches", pattern: "**" }] } }],
});
const policies = async () => (await db.pool.query("select name from ebb.policies order by name")).rows.map((r) => r.name);

test("crons that can never run are refused at policy create and import (exit 2, naming the field), and by SQL", async () => {
  const cases: [string, RegExp][] = [
    ["61 * * * *", /--cron: cron "61 \* \* \* \*": .*Invalid value for minute: 61/],
    ["99 99 99 99 99", /--cron: cron "99 99 99 99 99": .*Invalid value for minute: 99/],
    ["0 0 31 2 *", /--cron: cron "0 0 31 2 \*": never fires/],
    ["0 0 30 2 *", /--cron: cron "0 0 30 2 \*": never fires/],
    ["0 0 * * 8", /--cron: cron "0 0 \* \* 8": .*Invalid value for dayOfWeek: 8/],
  ];
  for (const [cron, message] of cases) {
    const r = await runCli(["policy", "create", "--file", policyFile, "--registry", "local", "--cron", cron], env);
    assert.equal(r.code, 2, `${cron}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stdout, "");
  }
  const tz = await runCli(["policy", "create", "--file", policyFile, "--registry", "local", "--cron", "0 3 * * *", "--timezone", "Mars/Olympus"], env);
  assert.equal(tz.code, 2);
  assert.match(tz.stderr, /--timezone: timezone "Mars\/Olympus" is not an IANA time zone/);
  // Harbor's cron comes from the file: the message points into it
  await writeFile(join(dir, "harbor.json"), harbor("0 0 0 31 2 *"));
  const imp = await runCli(["policy", "import", "--file", join(dir, "harbor.json"), "--registry", "local"], env);
  assert.equal(imp.code, 2, imp.stderr);
  assert.match(imp.stderr, /--file .*harbor\.json: trigger\.settings\.cron: cron "0 0 0 31 2 \*": never fires/);
  assert.deepEqual(await policies(), [], "nothing was created");
  // the real binary: the exit code reaches the shell
  const real = await runEbb(["policy", "create", "--file", policyFile, "--registry", "local", "--cron", "61 * * * *"], env);
  assert.equal(real.code, 2, real.stderr);
  // the same refusals by SQL, naming the column
  const insert = (cron: string) => db.pool.query(
    "insert into ebb.policies (name, registry_id, cron) values ('sql', (select id from ebb.registries where name = 'local'), $1)", [cron]);
  await assert.rejects(insert("61 * * * *"), /policies\.cron: minute \(field 1\): 61 is out of range 0-59/);
  await assert.rejects(insert("99 99 99 99 99"), /policies\.cron: minute \(field 1\): 99 is out of range 0-59/);
  await assert.rejects(insert("0 0 31 2 *"), /policies\.cron: day of month 31 never falls in month 2: the schedule would never fire/);
  await assert.rejects(insert("0 0 0 31 2 *"), /policies\.cron: day of month 31 never falls in month 2/);
  assert.deepEqual(await policies(), []);
  // good crons still go through, 5 and 6 fields
  const ok = await runCli(["policy", "create", "--file", policyFile, "--registry", "local", "--cron", "0 0 3 * * *", "--timezone", "Europe/Berlin"], env);
  assert.equal(ok.code, 0, ok.stderr);
  await writeFile(join(dir, "harbor-ok.json"), harbor("0 0 0 29 2 *"));
  const impOk = await runCli(["policy", "import", "--file", join(dir, "harbor-ok.json"), "--registry", "local", "--name", "leap"], env);
  assert.equal(impOk.code, 0, impOk.stderr);
});

test("ebb policy list and ebb status name a schedule the scheduler found invalid", async () => {
  await db.pool.query("delete from ebb.policies");
  const created = await runCli(["policy", "create", "--file", policyFile, "--registry", "local", "--cron", "0 3 * * *"], env);
  assert.equal(created.code, 0, created.stderr);
  // a row from before the database checked field ranges (triggers off for this session)
  const client = await db.pool.connect();
  try {
    await client.query("set session_replication_role = replica");
    await client.query("update ebb.policies set cron = '0 0 31 2 *' where name = 'keep'");
    await client.query("update ebb.schedules set cron = '0 0 31 2 *', next_due_at = null where kind = 'retention'");
  } finally {
    await client.query("reset session_replication_role");
    client.release();
  }
  await schedulerTick(db.pool, { now: new Date(), graceMs: 60_000, batchSize: 100 });
  const list = await runCli(["policy", "list"], env);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^keep\t.*\tINVALID: cron "0 0 31 2 \*": never fires$/m);
  const json = await runCli(["policy", "list", "--json"], env);
  assert.match(JSON.parse(json.stdout)[0].schedule_invalid_reason, /never fires/);
  const status = await runCli(["status"], env);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /0 enabled, 0 disabled, 1 invalid/);
  assert.match(status.stdout, /invalid schedules/);
  assert.match(status.stdout, /retention\s+│?\s*keep\s+│?\s*0 0 31 2 \*.*never fires/);
  const statusJson = JSON.parse((await runCli(["status", "--json"], env)).stdout);
  assert.deepEqual(statusJson.invalid_schedules.map((s: any) => [s.kind, s.target, s.cron]), [["retention", "keep", "0 0 31 2 *"]]);
});

test("a malformed DATABASE_URL is exit 2 naming DATABASE_URL, without a stack trace or the password", async () => {
  for (const url of ["postgres://x:99999/db", "postgres://u:hunter2secret@[::1/ebb", "postgres://u:hunter2secret@host:0/db", "postgres://u:%zzhunter2secret@host/db", "postgresql://u:hunter2secret@exa mple/db"]) {
    for (const args of [["status"], ["policy", "list"], ["migrate"]]) {
      const r = await runEbb(args, { DATABASE_URL: url });
      assert.equal(r.code, 2, `${url} ${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /DATABASE_URL \(--database-url\): /);
      assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
      assert.ok(!r.stderr.includes("hunter2secret"), `the password is shown: ${r.stderr}`);
    }
  }
  const start = await runEbb(["start"], { DATABASE_URL: "postgres://u:hunter2secret@[::1/ebb" });
  assert.equal(start.code, 2, start.stderr);
  assert.match(start.stderr, /DATABASE_URL \(--database-url\): is not a valid URL/);
  assert.ok(!start.stderr.includes("hunter2secret"));
});

test("a NUL character in a policy is exit 2 naming the field, not PostgreSQL's encoding error", async () => {
  await db.pool.query("delete from ebb.policies");
  const cases: [unknown, RegExp][] = [
    [{ name: "a\u0000b", rules: [{ template: "always", params: {} }] }, /invalid policy: name: must not contain the NUL character/],
    [{ name: "n", rules: [{ template: "always", params: {}, tag_selectors: [{ pattern: "v\u0000*" }] }] }, /rules\[0\]\.tag_selectors\[0\]\.pattern: must not contain the NUL character/],
    [{ name: "n", protected: [{ tag: { pattern: "\u0000" } }], rules: [{ template: "always", params: {} }] }, /protected\[0\]\.tag\.pattern: must not contain the NUL character/],
  ];
  for (const [policy, message] of cases) {
    const file = join(dir, "nul.json");
    await writeFile(file, JSON.stringify(policy));
    const r = await runCli(["policy", "create", "--file", file, "--registry", "local"], env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /invalid byte sequence|0x00/);
  }
  await writeFile(join(dir, "harbor-nul.json"), harbor("0 0 0 * * *").replace('"pattern":"**"', '"pattern":"*\\u0000*"'));
  const imp = await runCli(["policy", "import", "--file", join(dir, "harbor-nul.json"), "--registry", "local"], env);
  assert.equal(imp.code, 2, imp.stderr);
  assert.match(imp.stderr, /must not contain the NUL character/);
  assert.deepEqual(await policies(), []);
});
