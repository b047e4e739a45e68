// Policies as rows (ebb.policies, ebb.policy_rules) <-> ebb's policy model (policy_schema.ts).
//
// Reading: the policy row and its rules (position order) become ebb's policy JSON and go
// through parsePolicy - the very validation a policy file gets - so a row that PostgreSQL
// accepted but ebb cannot compile (bad glob, unsafe regex) is refused with the same
// field-naming message. Writing: a parsed Policy becomes one policy row and its rule rows in
// the caller's transaction.
import type pg from "pg";
import { parsePolicy, type Policy } from "./policy_schema.js";

type Queryable = Pick<pg.Pool | pg.PoolClient, "query">;

export interface PolicyRow {
  id: number;
  name: string;
  registry_id: number;
  registry_name: string;
  scope: Record<string, unknown>;
  deletion_unit: "artifact" | "untag";
  max_deletions: string | null;
  max_fraction: string | null;
  protected: unknown[];
  cron: string | null;
  timezone: string;
  enabled: boolean;
  dry_run: boolean;
  created_at: Date;
  updated_at: Date;
}

export interface PolicyRuleRow {
  position: number;
  template: string;
  params: Record<string, unknown>;
  tag_selectors: unknown[];
  repository_selectors: unknown[];
  disabled: boolean;
}

export interface StoredPolicy {
  row: PolicyRow;
  rules: PolicyRuleRow[];
  /** the rows as ebb's policy JSON (input of parsePolicy) */
  json: Record<string, unknown>;
  /** policy_rules.position of json.rules[i] */
  rulePositions: number[];
}

const POLICY_COLUMNS = `p.id, p.name, p.registry_id, r.name as registry_name, p.scope, p.deletion_unit,
  p.max_deletions::text, p.max_fraction::text, p.protected, p.cron, p.timezone, p.enabled, p.dry_run,
  p.created_at, p.updated_at`;

export function policyJson(row: PolicyRow, rules: readonly PolicyRuleRow[]): Record<string, unknown> {
  const caps: Record<string, number> = {};
  if (row.max_deletions !== null) caps["max_deletions"] = Number(row.max_deletions);
  if (row.max_fraction !== null) caps["max_fraction"] = Number(row.max_fraction);
  return {
    name: row.name,
    scope: row.scope,
    deletion_unit: row.deletion_unit,
    caps,
    protected: row.protected,
    rules: rules.map((r) => ({
      template: r.template,
      params: r.params,
      tag_selectors: r.tag_selectors,
      repository_selectors: r.repository_selectors,
      disabled: r.disabled,
    })),
  };
}

/** A policy by id or name with its rules; undefined when there is none. */
export async function readStoredPolicy(db: Queryable, idOrName: number | string): Promise<StoredPolicy | undefined> {
  const byId = typeof idOrName === "number";
  // policies primary key / policies name unique; its rules in the same statement
  // (policy_rules (policy_id, position) unique), in position order
  const { rows } = await db.query<PolicyRow & { rules_json: PolicyRuleRow[] }>(
    `select ${POLICY_COLUMNS},
            coalesce((select json_agg(json_build_object(
                        'position', x.position, 'template', x.template::text, 'params', x.params,
                        'tag_selectors', x.tag_selectors, 'repository_selectors', x.repository_selectors,
                        'disabled', x.disabled) order by x.position)
                        from ebb.policy_rules x where x.policy_id = p.id), '[]') as rules_json
       from ebb.policies p join ebb.registries r on r.id = p.registry_id
      where ${byId ? "p.id = $1" : "p.name = $1"}`,
    [idOrName],
  );
  const first = rows[0];
  if (!first) return undefined;
  const { rules_json: rules, ...row } = first;
  return { row, rules, json: policyJson(row, rules), rulePositions: rules.map((r) => r.position) };
}

export async function listPolicies(db: Queryable): Promise<(PolicyRow & { rules: number })[]> {
  const { rows } = await db.query<PolicyRow & { rules: number }>(
    `select ${POLICY_COLUMNS}, (select count(*)::int from ebb.policy_rules x where x.policy_id = p.id) as rules
       from ebb.policies p join ebb.registries r on r.id = p.registry_id order by p.name`,
  );
  return rows;
}

/** The stored policy as ebb's Policy. Throws PolicyValidationError naming the field. */
export function toPolicy(stored: StoredPolicy): Policy {
  return parsePolicy(stored.json);
}

export interface PolicySettings {
  registryId: number;
  cron?: string | null;
  timezone?: string;
  enabled?: boolean;
  dryRun?: boolean;
}

/**
 * Insert a parsed policy and its rules (positions 0..n-1) on the caller's client (run it in
 * a transaction). PostgreSQL validates again and its messages name the column. Returns the id.
 */
export async function insertPolicy(client: Queryable, policy: Policy, settings: PolicySettings): Promise<number> {
  const scope = { projects: policy.scope.projects, repositories: policy.scope.repositories };
  const { rows } = await client.query<{ id: number }>(
    `insert into ebb.policies (name, registry_id, scope, deletion_unit, max_deletions, max_fraction, protected,
                               cron, timezone, enabled, dry_run)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning id`,
    [
      policy.name, settings.registryId, JSON.stringify(scope), policy.deletion_unit,
      policy.caps.max_deletions ?? null, policy.caps.max_fraction ?? null, JSON.stringify(policy.protected),
      settings.cron ?? null, settings.timezone ?? "UTC", settings.enabled ?? true, settings.dryRun ?? false,
    ],
  );
  const id = rows[0]!.id;
  if (policy.rules.length > 0) {
    await client.query(
      `insert into ebb.policy_rules (policy_id, position, template, params, tag_selectors, repository_selectors, disabled)
       select $1, ord - 1, t::ebb.policy_rules_template, p, ts, rs, d
         from unnest($2::text[], $3::jsonb[], $4::jsonb[], $5::jsonb[], $6::boolean[]) with ordinality as x(t, p, ts, rs, d, ord)`,
      [
        id,
        policy.rules.map((r) => r.template),
        policy.rules.map((r) => JSON.stringify(r.params)),
        policy.rules.map((r) => JSON.stringify(r.tag_selectors)),
        policy.rules.map((r) => JSON.stringify(r.repository_selectors)),
        policy.rules.map((r) => r.disabled),
      ],
    );
  }
  return id;
}
