import type { Filter } from "./filter.js";

/**
 * A move's replacement never lands on the node it moves off (rebalance: that node is the
 * overloaded one; drain: the availability filter already says so, and comes first).
 */
export const moveFilter: Filter = {
  name: "move",
  appliesTo: (t) => t.moveOf !== undefined,
  check: (t, v) => (v.node.id === t.moveOf!.nodeId ? "being moved off" : undefined),
};
