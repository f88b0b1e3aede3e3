import type { Task } from "../model/objects.js";
import { slotKey } from "../model/slots.js";
import type { Plan } from "./plan.js";

/**
 * Splits a plan into transactions of at most `maxWrites` task writes (the store's maxOpsPerTxn:
 * etcd refuses bigger transactions), or returns it whole when it fits or there is no limit.
 *
 * A slot's writes stay in one chunk: a stop-first move (old task shut down, replacement created)
 * or a restart (ended task marked, successor created) is never half-written. Any prefix of the
 * chunks is then a state the orchestrator could have written itself, with fewer slots reconciled;
 * when a later chunk fails, the next sync plans the rest from what the store holds. A slot's
 * writes are few (its tasks and the bounded history); should they exceed the limit they are split.
 */
export function chunkPlan(plan: Plan, tasks: readonly Task[], maxWrites: number | undefined): Plan[] {
  const size = plan.create.length + plan.update.length + plan.delete.length;
  if (maxWrites === undefined || size <= maxWrites) return [plan];
  const limit = Math.max(1, maxWrites);
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const groups = new Map<string, Plan>();
  const group = (key: string): Plan => {
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { create: [], update: [], delete: [] }));
    return g;
  };
  for (const t of plan.update) group(slotKey(t)).update.push(t);
  for (const id of plan.delete) {
    const t = byId.get(id);
    group(t ? slotKey(t) : `id:${id}`).delete.push(id);
  }
  for (const t of plan.create) group(slotKey(t)).create.push(t);

  const chunks: Plan[] = [];
  let chunk: Plan = { create: [], update: [], delete: [] };
  let count = 0;
  const flush = (): void => {
    if (count > 0) chunks.push(chunk);
    chunk = { create: [], update: [], delete: [] };
    count = 0;
  };
  for (const g of groups.values()) {
    const n = g.create.length + g.update.length + g.delete.length;
    if (count + n > limit) flush();
    if (n <= limit) {
      chunk.update.push(...g.update);
      chunk.delete.push(...g.delete);
      chunk.create.push(...g.create);
      count += n;
      continue;
    }
    // One slot over the limit (not a plan the orchestrator makes today): updates, then deletes,
    // then creates, so a successor is never written before its predecessor is told to stop.
    for (const [kind, items] of [["update", g.update], ["delete", g.delete], ["create", g.create]] as const) {
      for (const item of items) {
        if (count === limit) flush();
        (chunk[kind] as unknown[]).push(item);
        count++;
      }
    }
  }
  flush();
  if (plan.requeueAfterMs !== undefined) chunks[chunks.length - 1]!.requeueAfterMs = plan.requeueAfterMs;
  return chunks;
}
