// Names that look like SQL or paths given to the ebb command (policy names, registry and
// repository arguments, crons): each is either refused as a usage error naming the argument,
// or stored and shown as the plain text it is; the tables are intact afterwards.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { freshDatabase } from "../support/db.js";
import { runEbb } from "../support/ebb_process.js";

const SQL_NAME = "keep'); drop table ebb.policies; --";

test("SQL- and path-like names on the command line: refused naming the argument, or kept as plain text; nothing dropped", async (t) => {
  const db = await freshDatabase(t);
  const { q } = db;
  await q("insert into ebb.registries (name, base_url) values ('local', 'http://127.0.0.1:5000')");
  const dir = await mkdtemp(join(tmpdir(), "ebb-hostile-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const env = { DATABASE_URL: db.url };
  const file = join(dir, "policy.json");
  await writeFile(file, JSON.stringify({ name: SQL_NAME, rules: [{ template: "latestPushedK", params: { latestPushedK: 3 } }] }));

  // a policy whose name is SQL is just a name
  const created = await runEbb(["policy", "create", "--file", file, "--registry", "local"], env);
  assert.equal(created.code, 0, created.stderr);
  const shown = await runEbb(["policy", "show", SQL_NAME], env);
  assert.equal(shown.code, 0, shown.stderr);
  assert.equal(JSON.parse(shown.stdout).policy.name, SQL_NAME);
  assert.deepEqual((await q("select name from ebb.policies")).map((r) => r.name), [SQL_NAME]);

  const refused: [string[], RegExp][] = [
    [["run", "x'; delete from ebb.policies; --"], /policy x'; delete from ebb\.policies; --: no such policy/],
    [["run", "../../etc/passwd"], /policy \.\.\/\.\.\/etc\/passwd: no such policy/],
    [["sync", "local'; drop table ebb.registries; --"], /no such registry/],
    [["policy", "create", "--file", file, "--registry", "local", "--cron", "0 0 * * * ;drop table ebb.schedules"], /cron/],
    [["policy", "create", "--file", join(dir, "..", "..", "etc", "nope.json"), "--registry", "local"], /--file .*cannot read/],
  ];
  for (const [args, message] of refused) {
    const r = await runEbb(args, env);
    assert.equal(r.code, 2, `${args.join(" ")}: exit ${r.code} ${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
  }
  // a repository argument that is no repository name: a usage error naming the argument,
  // before anything is read or stored
  for (const bad of ["../../etc/passwd", "team/app'; drop table ebb.repositories; --"]) {
    const r = await runEbb(["sync", "local", bad, "--database-url", db.url], env);
    assert.equal(r.code, 2, `sync local ${bad}: ${r.stderr}`);
    assert.ok(r.stderr.includes(`repository: invalid repository name ${JSON.stringify(bad)}`), `sync local ${bad}: ${r.stderr}`);
  }
  // every table still there and unchanged
  assert.deepEqual((await q("select name from ebb.policies")).map((r) => r.name), [SQL_NAME]);
  assert.equal((await q("select count(*)::int as n from ebb.registries"))[0].n, 1);
  assert.equal((await q("select count(*)::int as n from ebb.repositories"))[0].n, 0);
  assert.equal((await q("select count(*)::int as n from ebb.schedules"))[0].n, 0);
  assert.equal((await q("select count(*)::int as n from ebb.executions where kind = 'retention'"))[0].n, 0, "no retention was triggered by a refused command");
});
