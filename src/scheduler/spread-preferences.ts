import { nodeAttribute } from "../model/eligibility.js";
import type { PlacementTask } from "./filters/filter.js";
import type { NodeView } from "./view.js";

/** The group of the nodes that lack a spread attribute (a key no label value can be). */
export const MISSING_ATTRIBUTE = "\u0000missing";

/**
 * Swarm's placement preferences: for each `spread` attribute in order, keep only the nodes of
 * the value group(s) holding the fewest tasks of the service, counted over the group's feasible
 * nodes — so replicas spread evenly over zones, then over racks within a zone, and so on. Nodes
 * without the attribute form a group of their own. The usual scorers then pick within what is
 * left. Tied groups stay in the order of their first node in `feasible`, each group's nodes in
 * pool order (the scorers' tie-break depends on it). `fromLevel` skips attributes already
 * narrowed by the caller (group-placement.ts does the first one incrementally).
 */
export function narrowBySpread(task: PlacementTask, feasible: NodeView[], fromLevel = 0): NodeView[] {
  let pool = feasible;
  const attrs = task.spec.placement.spread ?? [];
  for (let level = fromLevel; level < attrs.length; level++) {
    const attr = attrs[level]!;
    const groups = new Map<string, { nodes: NodeView[]; tasks: number }>();
    for (const v of pool) {
      const key = nodeAttribute(v.node, attr) ?? MISSING_ATTRIBUTE;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { nodes: [], tasks: 0 }));
      g.nodes.push(v);
      g.tasks += v.tasksByService.get(task.serviceId) ?? 0;
    }
    let fewest = Infinity;
    for (const g of groups.values()) fewest = Math.min(fewest, g.tasks);
    const best: NodeView[] = [];
    for (const g of groups.values()) if (g.tasks === fewest) for (const v of g.nodes) best.push(v);
    pool = best;
  }
  return pool;
}
