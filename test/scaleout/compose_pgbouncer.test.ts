import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { composeConfig, composeSkipReason, PROJECT_ROOT } from "../support/docker_compose.js";

/** `docker-compose config` output cut into one text block per service */
function services(out: string): Map<string, string> {
  const body = out.slice(out.indexOf("services:\n") + "services:\n".length).split(/^\S/m)[0]!;
  const blocks = new Map<string, string>();
  for (const part of body.split(/^(?= {2}\S+:$)/m)) {
    const name = /^ {2}(\S+):$/m.exec(part)?.[1];
    if (name) blocks.set(name, part);
  }
  return blocks;
}

const ini = (text: string, key: string) => new RegExp(`^${key}\\s*=\\s*(.+)$`, "m").exec(text)?.[1]?.trim();

test("docker-compose.yml: the long-running ebb roles go through PgBouncer in transaction mode, the migrate job directly; PgBouncer's client limit covers every ebb pool", { skip: composeSkipReason() }, () => {
  const out = composeConfig();
  const svc = services(out);
  assert.ok(svc.has("pgbouncer"), "a pgbouncer service");
  assert.match(svc.get("pgbouncer")!, /deploy\/pgbouncer\.ini:\/etc\/pgbouncer\/pgbouncer\.ini/);
  let clients = 0;
  for (const name of ["ebb-scheduler", "ebb-worker", "ebb-http"]) {
    const s = svc.get(name);
    assert.ok(s, `service ${name}`);
    assert.match(s, /DATABASE_URL: postgres:\/\/[^@]+@pgbouncer:6432\/ebb$/m, `${name} connects through PgBouncer`);
    assert.match(s, /EBB_DATABASE_POOLING: transaction$/m, `${name} runs in transaction pooling mode`);
    const pool = Number(/EBB_POOL_SIZE: '?(\d+)'?$/m.exec(s)?.[1]);
    const replicas = Number(/replicas: (\d+)$/m.exec(s)?.[1] ?? 1);
    assert.ok(pool > 0, `${name} has a pool size`);
    clients += pool * replicas;
  }
  assert.match(svc.get("ebb-migrate")!, /DATABASE_URL: postgres:\/\/[^@]+@postgres:5432\/ebb$/m, "the migrate job talks to PostgreSQL directly");

  const conf = readFileSync(`${PROJECT_ROOT}deploy/pgbouncer.ini`, "utf8");
  assert.equal(ini(conf, "pool_mode"), "transaction");
  assert.ok(Number(ini(conf, "max_client_conn")) >= clients, `max_client_conn ${ini(conf, "max_client_conn")} >= ${clients} ebb client connections`);
  assert.equal(ini(conf, "max_db_connections"), ini(conf, "default_pool_size"), "the pool size is a hard cap");
  assert.match(conf, /^ebb = host=postgres port=5432 dbname=ebb$/m);
  const userlist = readFileSync(`${PROJECT_ROOT}deploy/pgbouncer-userlist.txt`, "utf8");
  const [, user, password] = /^"([^"]+)" "([^"]+)"$/m.exec(userlist) ?? [];
  assert.match(svc.get("postgres")!, new RegExp(`POSTGRES_USER: ${user}$`, "m"));
  assert.match(svc.get("postgres")!, new RegExp(`POSTGRES_PASSWORD: ${password}$`, "m"), "PgBouncer logs in with the database's password");
});
