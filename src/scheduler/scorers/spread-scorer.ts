import type { Scorer } from "./scorer.js";

/** Fewer tasks of the same service on a node is better: replicas spread across nodes. */
export const spreadScorer: Scorer = {
  name: "spread",
  weight: 2,
  score: (t, v, maxOfService) => {
    const n = v.tasksByService.get(t.serviceId) ?? 0;
    return maxOfService === 0 ? 1 : 1 - n / (maxOfService + 1);
  },
};
