import type { Scorer } from "./scorer.js";

/** Prefer the node with the most room left (reserved cpu and memory), then the fewest tasks. */
export const leastAllocatedScorer: Scorer = {
  name: "least-allocated",
  weight: 1,
  score: (_t, v) => {
    const cpu = v.node.resources.cpus > 0 ? 1 - Math.min(1, v.reservedCpus / v.node.resources.cpus) : 0;
    const mem = v.node.resources.memoryBytes > 0 ? 1 - Math.min(1, v.reservedMemoryBytes / v.node.resources.memoryBytes) : 0;
    const count = 1 / (1 + v.taskCount / 100);
    return (cpu + mem + count) / 3;
  },
};
