import { nodeAttribute } from "../model/eligibility.js";
import type { PlacementTask } from "./filters/filter.js";
import type { NodeView } from "./view.js";

/**
 * Swarm's placement preferences: for each `spread` attribute in order, keep only the nodes of
 * the value group(s) holding the fewest tasks of the service, counted over the group's feasible
 * nodes — so replicas spread evenly over zones, then over racks within a zone, and so on. Nodes
 * without the attribute form a group of their own. The usual scorers then pick within what is
 * left.
 */
export function narrowBySpread(task: PlacementTask, feasible: NodeView[]): NodeView[] {
  let pool = feasible;
  for (const attr of task.spec.placement.spread ?? []) {
    const groups = new Map<string, NodeView[]>();
    for (const v of pool) {
      const key = nodeAttribute(v.node, attr) ?? "\u0000missing";
      groups.set(key, [...(groups.get(key) ?? []), v]);
    }
    let best: NodeView[] = [];
    let fewest = Infinity;
    for (const nodes of groups.values()) {
      const n = nodes.reduce((sum, v) => sum + (v.tasksByService.get(task.serviceId) ?? 0), 0);
      if (n < fewest) {
        fewest = n;
        best = nodes;
      } else if (n === fewest) best = [...best, ...nodes];
    }
    pool = best;
  }
  return pool;
}
