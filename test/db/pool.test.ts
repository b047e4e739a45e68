import assert from "node:assert/strict";
import { test } from "node:test";
import { createPool } from "../../src/db/pool.js";
import { freshDatabase } from "../support/db.js";

test("the pool never holds more connections than its size under 200 concurrent queries", async () => {
  const db = await freshDatabase();
  const pool = createPool({ connectionString: db.url, max: 5, role: "pooltest" });
  let peak = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const { rows } = await db.pool.query(
        "select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = 'ebb:pooltest'",
      );
      peak = Math.max(peak, rows[0].n);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) => pool.query("select $1::int as i, pg_sleep(0.01)", [i])),
  );
  sampling = false;
  await sampler;
  assert.equal(results.length, 200);
  assert.deepEqual(results.map((r) => r.rows[0].i), Array.from({ length: 200 }, (_, i) => i));
  assert.ok(peak >= 2, `the sampler saw the pool's connections (peak ${peak})`);
  assert.ok(peak <= 5, `peak ${peak} connections > pool size 5`);
  await pool.end();
});
