import type { FastifyPluginAsync } from "fastify";
import { Type } from "@sinclair/typebox";
import { ErrorBody, NodeUpdateInput } from "../input/schemas.js";
import type { ApiDeps } from "./deps.js";
import { findNode } from "./lookup.js";

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
    { schema: { tags: ["nodes"], summary: "Change a node's availability or labels", params: Ref, body: NodeUpdateInput, response: { 400: ErrorBody, 404: ErrorBody } } },
    (req) =>
      store.update((tx) => {
        const n = findNode(tx, req.params.ref);
        return tx.update("nodes", { ...n, ...(req.body.availability ? { availability: req.body.availability } : {}), ...(req.body.labels ? { labels: req.body.labels } : {}) });
      }),
  );
};
