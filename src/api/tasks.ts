import type { FastifyPluginAsync } from "fastify";
import { Type } from "@sinclair/typebox";
import { ErrorBody } from "../input/schemas.js";
import type { ApiDeps } from "./deps.js";
import { findService, findTask } from "./lookup.js";

const Query = Type.Object({ service: Type.Optional(Type.String()), node: Type.Optional(Type.String()) }, { additionalProperties: false });

export const tasksRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { store } = deps;
  app.get<{ Querystring: { service?: string; node?: string } }>(
    "/tasks",
    { schema: { tags: ["tasks"], summary: "List tasks, optionally of one service or node", querystring: Query, response: { 404: ErrorBody } } },
    (req) =>
      store.view((tx) => {
        let tasks = req.query.service ? tx.tasksOfService(findService(tx, req.query.service).id) : tx.list("tasks");
        if (req.query.node) tasks = tasks.filter((t) => t.nodeId === req.query.node);
        return tasks.sort((a, b) => a.serviceName.localeCompare(b.serviceName) || a.slot - b.slot || b.createdAt - a.createdAt);
      }),
  );
  app.get<{ Params: { ref: string } }>(
    "/tasks/:ref",
    { schema: { tags: ["tasks"], summary: "Inspect a task", params: Type.Object({ ref: Type.String() }), response: { 404: ErrorBody } } },
    (req) => store.view((tx) => findTask(tx, req.params.ref)),
  );
};
