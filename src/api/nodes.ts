import type { FastifyPluginAsync } from "fastify";
import { Type } from "@sinclair/typebox";
import { ErrorBody, NodeUpdateInput } from "../input/schemas.js";
import type { ApiDeps } from "./deps.js";
import { findNode } from "./lookup.js";
import { rebalanceService } from "./rebalance.js";

const Ref = Type.Object({ ref: Type.String({ description: "id, hostname or unique id prefix" }) });

export const nodesRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { store } = deps;
  app.get("/nodes", { schema: { tags: ["nodes"], summary: "List nodes" } }, () =>
    store.view((tx) => tx.list("nodes")).sort((a, b) => a.hostname.localeCompare(b.hostname)),
  );
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
        return { node, rebalanced: replicated.map((s) => rebalanceService(tx, s, deps.clock.now())) };
      });
      if (rebalanced) deps.log.info({ nodeId: node.id, moves: rebalanced.reduce((n, r) => n + r.moves.length, 0) }, "services rebalanced");
      return rebalanced ? { ...node, rebalanced } : node;
    },
  );
};
