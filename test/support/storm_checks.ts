import assert from "node:assert/strict";

type Query = (sql: string, params?: unknown[]) => Promise<any[]>;

/**
 * The outcome every midnight-storm test asserts, from the rows (test kind test_sleep): each
 * schedule fired exactly once, on the one slot, and its execution succeeded; every task
 * succeeded and ran to completion exactly once; `processes` ebb processes shared the work.
 */
export async function assertStormOutcome(q: Query, opts: { schedules: number; tasksPerExecution: number; processes: number; slotAt: Date }): Promise<void> {
  const { schedules, tasksPerExecution, processes } = opts;
  const execs = await q(`select status, count(*)::int as n, count(distinct schedule_id)::int as schedules,
                                count(distinct (schedule_id, fire_time))::int as slots, min(fire_time) as first, max(fire_time) as last
                           from ebb.executions group by status`);
  assert.deepEqual(execs.map((e) => [e.status, e.n, e.schedules, e.slots]), [["success", schedules, schedules, schedules]],
    "each schedule fired exactly once on its slot and the execution succeeded");
  assert.equal(new Date(execs[0].first).getTime(), opts.slotAt.getTime(), "all on the one slot");
  assert.equal(new Date(execs[0].last).getTime(), opts.slotAt.getTime());
  const tasks = await q("select status, count(*)::int as n from ebb.tasks group by status");
  assert.deepEqual(tasks.map((t) => [t.status, t.n]), [["success", schedules * tasksPerExecution]]);
  const runs = await q("select count(*)::int as tasks, max(n)::int as most from (select task_id, count(*) as n from public.test_task_runs group by task_id) r");
  assert.deepEqual(runs[0], { tasks: schedules * tasksPerExecution, most: 1 }, "every task ran to completion exactly once");
  const pids = await q("select count(distinct pid)::int as n from public.test_task_runs");
  assert.equal(pids[0].n, processes, `the work was shared by the ${processes} processes`);
}
