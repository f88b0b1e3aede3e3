import type { Filter } from "./filter.js";

/**
 * A process task with a memory (cpu) limit goes only to a node whose agent enforces memory (cpu)
 * limits through cgroups: run elsewhere it would be refused at start, or worse, run unlimited.
 * Nodes that predate limits report nothing and enforce nothing. A container's limits are the
 * engine's to enforce (the driver filter already asks for a node with docker).
 */
export const limitsFilter: Filter = {
  name: "limits",
  appliesTo: (t) => t.spec.driver !== "docker" && (t.spec.limits?.memoryBytes !== undefined || t.spec.limits?.cpus !== undefined),
  check: (t, v) => {
    const missing: string[] = [];
    if (t.spec.limits?.memoryBytes !== undefined && !v.node.limits?.memory) missing.push("memory");
    if (t.spec.limits?.cpus !== undefined && !v.node.limits?.cpu) missing.push("cpu");
    return missing.length ? `cannot enforce ${missing.join(" and ")} limits` : undefined;
  },
};
