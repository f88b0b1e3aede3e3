import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import { Type } from "@sinclair/typebox";
import { ErrorBody, NodeUpdateInput } from "../input/schemas.js";
import type { ApiDeps } from "./deps.js";
import { findNode } from "./lookup.js";
import { BatonError } from "../lib/errors.js";
import { CLUSTER_ID, type Node, type Task } from "../model/objects.js";
import type { ReadTx, WriteTx } from "../store/store.js";

type ManagerStatus = "leader" | "reachable" | "unreachable";
import { isTerminal } from "../model/task-state.js";
import { rebalanceService } from "./rebalance.js";
import { checkDemote, checkPromote, hasMember, type RoleChangeContext } from "../cluster/role-change.js";
import type { RoleControl } from "./deps.js";

const Ref = Type.Object({ ref: Type.String({ description: "id, hostname or unique id prefix" }) });

export const nodesRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { store } = deps;
  app.get("/nodes", { schema: { tags: ["nodes"], summary: "List nodes; managers carry `managerStatus` (leader, reachable, unreachable)" } }, () => {
    const ms = deps.managerStatus?.();
    const statusOf = (n: Node): ManagerStatus => (ms ? (ms.leader === n.id ? "leader" : ms.reachable.has(n.id) ? "reachable" : "unreachable") : n.status.state === "ready" ? "leader" : "unreachable");
    return store
      .view((tx) => tx.list("nodes"))
      .sort((a, b) => a.hostname.localeCompare(b.hostname))
      .map((n) => (n.role === "manager" ? { ...n, managerStatus: statusOf(n) } : n));
  });
  app.get<{ Params: { ref: string } }>("/nodes/:ref", { schema: { tags: ["nodes"], summary: "Inspect a node", params: Ref, response: { 404: ErrorBody } } }, (req) =>
    store.view((tx) => findNode(tx, req.params.ref)),
  );
  app.post<{ Params: { ref: string }; Body: NodeUpdateInput }>(
    "/nodes/:ref/update",
    { schema: { tags: ["nodes"], summary: "Change a node's availability or labels; `rebalance: true` then rebalances every replicated service", params: Ref, body: NodeUpdateInput, response: { 400: ErrorBody, 404: ErrorBody } } },
    async (req) => {
      const { availability, labels, rebalance } = req.body;
      // One transaction: the rebalance plans against the node as just changed (active again).
      const { node, rebalanced } = await store.update((tx) => {
        const n = findNode(tx, req.params.ref);
        const node = tx.update("nodes", { ...n, ...(availability ? { availability } : {}), ...(labels ? { labels } : {}) });
        if (!rebalance) return { node, rebalanced: undefined };
        const replicated = tx.list("services").filter((s) => s.spec.mode.kind === "replicated").sort((a, b) => a.spec.name.localeCompare(b.spec.name));
        // One transaction: the moves share what it may hold, less the node's own write.
        let budget = (store.maxOpsPerTxn ?? Infinity) - 1;
        return {
          node,
          rebalanced: replicated.map((s) => {
            const r = rebalanceService(tx, s, deps.clock.now(), budget);
            budget -= r.moves.length;
            return r;
          }),
        };
      });
      if (rebalanced) deps.log.info({ nodeId: node.id, moves: rebalanced.reduce((n, r) => n + r.moves.length, 0) }, "services rebalanced");
      return rebalanced ? { ...node, rebalanced } : node;
    },
  );

  const roleControl = (): RoleControl => {
    if (!deps.roles) throw new BatonError("BAD_REQUEST", "this node is not part of a cluster: `baton init` makes it one (docs/cluster.md)");
    return deps.roles;
  };
  /**
   * Declares the role a node is to take (`desiredRole`); the node carries it out. `allowed` runs the
   * checks (and answers false when the node already has that role: nothing to declare).
   */
  const declareRole = (role: "manager" | "worker", allowed: (tx: WriteTx, n: Node, opts: RoleChangeContext) => boolean) => async (req: FastifyRequest<{ Params: { ref: string } }>) => {
    const roles = roleControl();
    const members = roles.members ? await roles.members() : undefined;
    const node = await store.update((tx) => {
      const n = findNode(tx, req.params.ref);
      if (!allowed(tx, n, { etcd: roles.etcd, ...(members ? { members } : {}) })) return n;
      const next: Node = { ...n, desiredRole: role };
      if (n.role === role) delete next.desiredRole;
      return tx.update("nodes", next);
    });
    roles.changed();
    req.log.info({ nodeId: node.id, hostname: node.hostname }, role === "manager" ? "node promotion declared" : "node demotion declared");
    return node;
  };
  app.post<{ Params: { ref: string } }>(
    "/nodes/:ref/promote",
    { schema: { tags: ["nodes"], summary: "Make a worker a manager: the running node fetches its manager certificate and starts the manager parts (`desiredRole` until it has)", params: Ref, response: { 400: ErrorBody, 404: ErrorBody } } },
    declareRole("manager", (_tx, n, opts) => checkPromote(n, opts)),
  );
  app.post<{ Params: { ref: string } }>(
    "/nodes/:ref/demote",
    { schema: { tags: ["nodes"], summary: "Make a manager a worker: it steps down, its etcd member leaves, it keeps its tasks (`desiredRole` until it has)", params: Ref, response: { 400: ErrorBody, 404: ErrorBody } } },
    declareRole("worker", (tx, n, opts) => checkDemote(n, tx.list("nodes"), opts)),
  );

  app.delete<{ Params: { ref: string }; Querystring: { force?: string } }>(
    "/nodes/:ref",
    {
      schema: {
        tags: ["nodes"],
        summary: "Remove a node: its certificate is refused from then on and its tasks are replaced elsewhere (force: even while it is up)",
        params: Ref,
        querystring: Type.Object({ force: Type.Optional(Type.String({ enum: ["0", "1", "true", "false"] })) }, { additionalProperties: false }),
        response: { 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (req) => {
      const force = req.query.force === "1" || req.query.force === "true";
      const self = deps.system.info().nodeId;
      // A lost manager's etcd member goes first, so the quorum is counted over the managers that
      // are; the node's checks run before it (a refused rm removes nothing), and again below.
      const members = deps.roles?.members ? await deps.roles.members() : undefined;
      const target = store.view((tx) => findNode(tx, req.params.ref));
      if (target.role === "manager" && target.id !== self && (target.status.state !== "ready" || force) && hasMember(target, members)) {
        await deps.roles!.removeMember!(target.id);
        req.log.info({ nodeId: target.id }, "the removed manager's etcd member was removed");
      }
      const removable = (tx: ReadTx) => {
        const n = findNode(tx, req.params.ref);
        if (n.id === self) throw new BatonError("BAD_REQUEST", `node ${n.hostname} runs this manager: it cannot remove itself`, [{ path: ["node"], problem: "is this manager" }]);
        if (n.status.state === "ready" && !force)
          throw new BatonError("BAD_REQUEST", `node ${n.hostname} is up: stop it (\`baton leave\` on it) before removing it, or use --force`, [{ path: ["node"], problem: "not down" }]);
        return n;
      };
      const now = deps.clock.now();
      const orphan = (t: Task): Task => ({ ...t, status: { ...t.status, state: "orphaned", timestamp: now, message: "node removed" } });
      // Where a transaction's size is limited (etcd: hundreds of tasks on the node), the node is
      // first marked down (nothing more is placed on it) and its unfinished tasks orphaned in
      // chunks, each checked like the removal; the last transaction removes it. If a chunk fails,
      // the node is still there, down, and `node rm` again finishes.
      const budget = store.maxOpsPerTxn;
      if (budget !== undefined) {
        for (;;) {
          const left = store.view((tx) => tx.tasksOfNode(removable(tx).id).filter((t) => !isTerminal(t.status.state)));
          // The removal itself: the node, the cluster record (revocation), the last tasks.
          if (left.length + 2 <= budget) break;
          await store.update((tx) => {
            const n = removable(tx);
            if (n.status.state !== "down") tx.update("nodes", { ...n, status: { ...n.status, state: "down", message: "being removed" } });
            for (const t of left.slice(0, budget - 1)) {
              const cur = tx.get("tasks", t.id);
              if (cur && !isTerminal(cur.status.state)) tx.update("tasks", orphan(cur));
            }
          });
        }
      }
      const removed = await store.update((tx) => {
        const n = removable(tx);
        for (const t of tx.tasksOfNode(n.id)) {
          if (isTerminal(t.status.state)) continue;
          tx.update("tasks", orphan(t));
        }
        const rec = tx.get("clusters", CLUSTER_ID);
        if (rec && deps.cluster) {
          const revoked = deps.cluster.revokeNodeIn(rec, n.id);
          // A removed manager is no longer one agents and the CLI fail over to (when its address tells which entry it was).
          const own = n.role === "manager" && n.status.address ? (revoked.managers ?? []).filter((m) => m.startsWith(`${n.status.address}:`)) : [];
          tx.update("clusters", own.length === 1 ? { ...revoked, managers: revoked.managers!.filter((m) => m !== own[0]) } : revoked);
        }
        tx.delete("nodes", n.id);
        return n;
      });
      deps.cluster?.disconnect(removed.id, "this node was removed from the cluster");
      req.log.info({ nodeId: removed.id, hostname: removed.hostname, force }, "node removed");
      return { id: removed.id };
    },
  );
};
