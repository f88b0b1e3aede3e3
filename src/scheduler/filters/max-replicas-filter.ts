import type { Filter } from "./filter.js";

/** --replicas-max-per-node: at most N tasks of the service on one node. */
export const maxReplicasFilter: Filter = {
  name: "max-replicas",
  appliesTo: (t) => (t.spec.placement.maxReplicasPerNode ?? 0) > 0,
  check: (t, v) => {
    const max = t.spec.placement.maxReplicasPerNode!;
    return (v.tasksByService.get(t.serviceId) ?? 0) >= max ? `max replicas per node (${max})` : undefined;
  },
};
