import type { MemberStatus } from "../ha/membership.js";
import { BatonError } from "../lib/errors.js";
import type { Node } from "../model/objects.js";

/**
 * `baton node promote|demote` are declared in the store (Node.desiredRole) and carried out by the
 * node itself: a worker is told over its session and fetches a manager certificate with the
 * manager material (POST /v1/join/promote); a manager sees its own record and steps down. These
 * checks run in the API before anything is written, so a refused change changes nothing.
 */

/** What the API knows of the cluster's store for a role change. */
export interface RoleChangeContext {
  /** The store is etcd (managers can share it); false on SQLite. */
  etcd: boolean;
  /** The managed etcd's members with their health (`baton init --ha`); absent on a user's etcd. */
  members?: MemberStatus[];
}

/** Whether promoting `node` is possible; false when it is a manager already (nothing to do). */
export function checkPromote(node: Node, ctx: RoleChangeContext): boolean {
  if (!ctx.etcd)
    throw new BatonError("BAD_REQUEST", `this cluster's store is SQLite, on the first manager's disk: another manager needs a store the managers share; start the cluster with \`baton init --ha\` (or \`--store etcd://…\`) to have several managers (docs/ha.md)`, [{ path: ["node"], problem: "promotion needs an etcd store" }]);
  if (node.role === "manager" && node.desiredRole !== "worker") return false;
  if (node.status.state !== "ready")
    throw new BatonError("BAD_REQUEST", `node ${node.hostname} is ${node.status.state}: only a running node can become a manager (it fetches its manager certificate itself)`, [{ path: ["node"], problem: "not ready" }]);
  return true;
}

/** Whether demoting `node` is possible; false when it is a worker already. `nodes`: every node. */
export function checkDemote(node: Node, nodes: Node[], ctx: RoleChangeContext): boolean {
  if (node.role === "worker" && node.desiredRole !== "manager") return false;
  const others = nodes.filter((n) => n.id !== node.id && n.role === "manager" && n.desiredRole !== "worker");
  if (others.length === 0)
    throw new BatonError("BAD_REQUEST", `node ${node.hostname} is the last manager: promote another node first (a cluster without a manager cannot schedule, heal or be changed)`, [{ path: ["node"], problem: "last manager" }]);
  if (node.status.state !== "ready")
    throw new BatonError("BAD_REQUEST", `node ${node.hostname} is ${node.status.state}: a manager steps down itself, so it must be running; remove a lost manager with \`baton node rm\` instead`, [{ path: ["node"], problem: "not ready" }]);
  if (ctx.members) {
    // Its member leaves the etcd cluster: the members left must still be a quorum of themselves.
    const left = ctx.members.filter((m) => m.name !== node.id);
    const healthy = left.filter((m) => m.healthy).length;
    const quorum = Math.floor(left.length / 2) + 1;
    if (healthy < quorum)
      throw new BatonError(
        "BAD_REQUEST",
        `demoting ${node.hostname} would lose the etcd quorum: ${healthy} of the ${left.length} members left are healthy, ${quorum} are needed (\`baton ha members\`); bring the others back, or remove lost managers with \`baton node rm\` first`,
        [{ path: ["node"], problem: "etcd quorum" }],
      );
  }
  return true;
}

/**
 * The members a `node rm` of a lost manager leaves: its member is removed from etcd too, so the
 * quorum is counted over the managers that are. True when `node` has a member to remove.
 */
export const hasMember = (node: Node, members: MemberStatus[] | undefined): boolean => members?.some((m) => m.name === node.id) ?? false;
