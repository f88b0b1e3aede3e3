import type { Node, Task, TaskSpec } from "./objects.js";
import { parseConstraint, type Constraint } from "./constraints.js";
import { isTerminal } from "./task-state.js";

/**
 * Which nodes may run which tasks: one rule, used by the orchestrator (global services), the
 * scheduler's filters and the service status (desired count of a global service).
 */

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

/** A node takes tasks only while its agent is known to be there. */
export const isNodeReady = (node: Node): boolean => node.status.state === "ready";

/** Only active nodes take new tasks: pause keeps what runs there, drain moves it away. */
export const acceptsNewTasks = (node: Node): boolean => node.availability === "active";

/**
 * Why the node cannot take a new task of this spec, or undefined when it can. Resources and
 * drivers are the scheduler's own business (they depend on what else is placed in the batch).
 */
export function placementProblem(node: Node, spec: TaskSpec): string | undefined {
  if (!isNodeReady(node)) return `not ready (${node.status.state})`;
  if (!acceptsNewTasks(node)) return `availability ${node.availability}`;
  const c = failedConstraint(node, spec);
  return c ? `constraint ${c.text}` : undefined;
}

/** A task that holds its node's slot: wanted running and not ended. */
const holdsSlot = (t: Task): boolean => t.desiredState === "running" && !isTerminal(t.status.state);

/**
 * Whether a global service wants its task on this node: when the node can take a new one, or
 * when the node is paused (not drained, not down) and already runs it — pause stops new
 * placements, as in Swarm, and leaves running tasks alone.
 */
export function wantsGlobalTask(node: Node, spec: TaskSpec, tasksOnNode: readonly Task[]): boolean {
  if (!placementProblem(node, spec)) return true;
  return node.availability === "pause" && isNodeReady(node) && !failedConstraint(node, spec) && tasksOnNode.some(holdsSlot);
}

/** The nodes a global service wants a task on, given its tasks. */
export function globalNodes(nodes: readonly Node[], spec: TaskSpec, tasks: readonly Task[]): Node[] {
  return nodes.filter((n) => wantsGlobalTask(n, spec, tasks.filter((t) => t.nodeId === n.id)));
}
