// The read-only JSON API: execution history and retention decisions, the same objects as
// `ebb executions list|show --json` (src/executions/execution_queries.ts).
//
//   GET /api/executions?limit=20&kind=retention&status=running&before=<id>
//   GET /api/executions/:id?tasks=50            execution, task counts, tasks, decisions summary
//   GET /api/executions/:id/decisions?action=delete&outcome=deleted&limit=100&after=<id>
//
// Bad parameters get 400 with a message naming the parameter; unknown executions 404.
// Nothing here reads registry credentials (registries are read by name only).
import type { FastifyInstance, FastifyReply } from "fastify";
import {
  DECISION_ACTIONS, DECISION_OUTCOMES, EXECUTION_STATUSES, listDecisions, listExecutions, readExecutionDetail,
  type ListDecisionsOptions, type ListExecutionsOptions,
} from "../executions/execution_queries.js";
import type { AppContext } from "../service/context.js";

class BadParameter extends Error {}

type Query = Record<string, string | string[] | undefined>;

function one(q: Query, name: string): string | undefined {
  const v = q[name];
  if (Array.isArray(v)) throw new BadParameter(`${name}: give it once`);
  return v === undefined || v === "" ? undefined : v;
}

function int(q: Query, name: string, min: number, max: number, dflt?: number): number | undefined {
  const v = one(q, name);
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new BadParameter(`${name}: must be a whole number between ${min} and ${max} (got ${JSON.stringify(v)})`);
  return Number(v);
}

function choice<T extends string>(q: Query, name: string, choices: readonly T[]): T | undefined {
  const v = one(q, name);
  if (v === undefined) return undefined;
  if (!(choices as readonly string[]).includes(v)) throw new BadParameter(`${name}: must be one of ${choices.join(", ")} (got ${JSON.stringify(v)})`);
  return v as T;
}

function executionId(params: unknown): number {
  const raw = (params as { id?: string }).id ?? "";
  if (!/^[1-9]\d{0,15}$/.test(raw)) throw new BadParameter(`id: must be an execution id (a positive whole number, got ${JSON.stringify(raw)})`);
  return Number(raw);
}

async function answer(reply: FastifyReply, fn: () => Promise<unknown>): Promise<unknown> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof BadParameter) return reply.code(400).send({ error: err.message });
    throw err;
  }
}

export function registerApiRoutes(app: FastifyInstance, ctx: AppContext): void {
  if (!ctx.config.api) return; // EBB_API=false: no /api/* routes at all (404)
  app.get("/api/executions", async (req, reply) =>
    answer(reply, async () => {
      const q = req.query as Query;
      const opts: ListExecutionsOptions = { limit: int(q, "limit", 1, 1000, 20)! };
      const kind = one(q, "kind");
      if (kind !== undefined) opts.kind = kind;
      const status = choice(q, "status", EXECUTION_STATUSES);
      if (status !== undefined) opts.status = status;
      const target = int(q, "target_id", 1, Number.MAX_SAFE_INTEGER);
      if (target !== undefined) opts.targetId = target;
      const before = int(q, "before", 1, Number.MAX_SAFE_INTEGER);
      if (before !== undefined) opts.beforeId = before;
      return { executions: await listExecutions(ctx.pool, opts) };
    }));

  app.get("/api/executions/:id", async (req, reply) =>
    answer(reply, async () => {
      const id = executionId(req.params);
      const detail = await readExecutionDetail(ctx.pool, id, { taskLimit: int(req.query as Query, "tasks", 0, 100_000, 50)! });
      if (!detail) return reply.code(404).send({ error: `execution ${id}: no such execution` });
      return detail;
    }));

  app.get("/api/executions/:id/decisions", async (req, reply) =>
    answer(reply, async () => {
      const id = executionId(req.params);
      const q = req.query as Query;
      const opts: ListDecisionsOptions = { limit: int(q, "limit", 1, 10_000, 100)! };
      const action = choice(q, "action", DECISION_ACTIONS);
      if (action !== undefined) opts.action = action;
      const outcome = choice(q, "outcome", DECISION_OUTCOMES);
      if (outcome !== undefined) opts.outcome = outcome;
      const after = int(q, "after", 1, Number.MAX_SAFE_INTEGER);
      if (after !== undefined) opts.afterId = after;
      // executions primary key: an unknown execution is a 404, not an empty page
      const { rowCount } = await ctx.pool.query("select 1 from ebb.executions where id = $1", [id]);
      if (!rowCount) return reply.code(404).send({ error: `execution ${id}: no such execution` });
      const decisions = await listDecisions(ctx.pool, id, opts);
      const last = decisions.at(-1);
      return { execution_id: id, decisions, next_after: decisions.length === opts.limit && last ? last.id : null };
    }));
}
