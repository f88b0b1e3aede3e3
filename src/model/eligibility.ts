import type { Node, TaskSpec } from "./objects.js";
import { parseConstraint, type Constraint } from "./constraints.js";

/** The value a constraint key names on a node. */
export function nodeAttribute(node: Node, key: string): string | undefined {
  switch (key) {
    case "node.id": return node.id;
    case "node.hostname": return node.hostname;
    case "node.role": return node.role;
    case "node.platform.os": return node.platform.os;
    case "node.platform.arch": return node.platform.arch;
    default: return key.startsWith("node.labels.") ? node.labels[key.slice("node.labels.".length)] : undefined;
  }
}

export function matchesConstraint(node: Node, c: Constraint): boolean {
  const v = nodeAttribute(node, c.key);
  return c.op === "==" ? v === c.value : v !== c.value;
}

/** First constraint the node fails, if any. Constraints were validated at the edge. */
export function failedConstraint(node: Node, spec: TaskSpec): Constraint | undefined {
  for (const text of spec.placement.constraints) {
    const c = parseConstraint(text);
    if (typeof c !== "string" && !matchesConstraint(node, c)) return c;
  }
  return undefined;
}

/** A global service runs on every node that is not drained and meets its constraints. */
export function isNodeEligible(node: Node, spec: TaskSpec): boolean {
  return node.availability !== "drain" && node.status.state !== "down" && !failedConstraint(node, spec);
}
