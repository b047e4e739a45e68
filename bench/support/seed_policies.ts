// Retention policies by plain SQL (the contract in section 3 of migrations/0001_schema.sql):
// `count` policies named bench-<k>, each with the bench policy's rules, protected tag and cap.
// scope "project": policy k covers project proj<k> (2 repositories in the seeded catalog,
// Harbor's one-policy-per-project model); scope "all": every repository of the registry.
// A policy with a cron gets its ebb.schedules row from the policies trigger. Dry runs decide
// on the seeded catalog as it is (dry_run_reads = 'catalog'): there is no registry behind it.
import type pg from "pg";
import { BENCH_POLICY } from "../evaluate/bench_policy.js";

export interface PolicySeed {
  registryId: number;
  count: number;
  scope: "project" | "all";
  /** null = manual runs only (no schedule row) */
  cron: string | null;
  dryRun: boolean;
}

function withKind<T extends { kind?: string }>(selectors: readonly T[] | undefined): T[] {
  return (selectors ?? []).map((s) => ({ ...s, kind: s.kind ?? "glob" }));
}

/** Inserts the policies and their rules; returns the policy ids in k order. */
export async function seedPolicies(pool: pg.Pool, seed: PolicySeed): Promise<number[]> {
  const client = await pool.connect();
  try {
    await client.query("begin");
    const { rows } = await client.query<{ id: string }>(
      `insert into ebb.policies (name, registry_id, scope, max_fraction, protected, cron, timezone, dry_run, dry_run_reads)
       select 'bench-' || k, $1,
              case when $2 = 'project'
                   then jsonb_build_object('projects', jsonb_build_array(jsonb_build_object('kind', 'glob', 'pattern', 'proj' || k)))
                   else '{}'::jsonb end,
              $3, $4::jsonb, $5, 'UTC', $6, 'catalog'
         from generate_series(1, $7::int) k
        order by k
       returning id`,
      [
        seed.registryId,
        seed.scope,
        BENCH_POLICY.caps?.max_fraction ?? null,
        JSON.stringify((BENCH_POLICY.protected ?? []).map((p) => ({ ...p, tag: { kind: "glob", ...p.tag } }))),
        seed.cron,
        seed.dryRun,
        seed.count,
      ],
    );
    const rules = BENCH_POLICY.rules.map((r, position) => ({
      position,
      template: r.template,
      params: r.params ?? {},
      tag_selectors: withKind(r.tag_selectors),
      repository_selectors: withKind(r.repository_selectors),
    }));
    await client.query(
      `insert into ebb.policy_rules (policy_id, position, template, params, tag_selectors, repository_selectors)
       select p.id, r.position, r.template::ebb.policy_rules_template, r.params, r.tag_selectors, r.repository_selectors
         from ebb.policies p
         cross join jsonb_to_recordset($1::jsonb)
              as r(position smallint, template text, params jsonb, tag_selectors jsonb, repository_selectors jsonb)
        where p.name like 'bench-%'`,
      [JSON.stringify(rules)],
    );
    await client.query("commit");
    return rows.map((r) => Number(r.id));
  } catch (err) {
    await client.query("rollback").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
