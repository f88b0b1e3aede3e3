import type { FastifyPluginAsync } from "fastify";
import { Type } from "@sinclair/typebox";
import type { TaskStatsReport } from "../dispatcher/protocol.js";
import { ErrorBody } from "../input/schemas.js";
import { taskName, type Task } from "../model/objects.js";
import { BatonError } from "../lib/errors.js";
import type { ApiDeps } from "./deps.js";
import { findNode, findService } from "./lookup.js";
import { FORWARDED_HEADER } from "./forwarding.js";

/**
 * Where tasks' resource use is read: the local agent's drivers, the session of the node that runs
 * them, or (`forward`, the default) the manager that holds that session.
 */
export interface StatsSource {
  read(nodeId: string, taskIds: string[], forward?: boolean): Promise<TaskStatsReport[]>;
}

/** One running task's resource use, as `baton stats` shows it (docker stats' columns). */
export interface TaskStatsRow extends Omit<TaskStatsReport, "taskId"> {
  taskId: string;
  task: string;
  serviceName: string;
  nodeId: string;
  containerId?: string;
  pid?: number;
  /** The task's --limit-cpu / --limit-memory, when set. */
  cpuLimit?: number;
  memoryLimitBytes?: number;
}

const Query = Type.Object({ service: Type.Optional(Type.String({ maxLength: 128 })) }, { additionalProperties: false });

export const statsRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { store, stats } = deps;
  app.post<{ Params: { ref: string }; Body: { taskIds: string[] } }>(
    "/nodes/:ref/stats",
    {
      schema: {
        tags: ["nodes"],
        summary: "CPU and memory of some of a node's tasks, as its agent samples them; what a manager without the node's session asks the one holding it",
        params: Type.Object({ ref: Type.String() }),
        body: Type.Object({ taskIds: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 10_000 }) }, { additionalProperties: false }),
        response: { 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (req) => {
      const node = store.view((tx) => findNode(tx, req.params.ref));
      if (!stats) throw new BatonError("UNAVAILABLE", "this manager reads no stats");
      return stats.read(node.id, req.body.taskIds, req.headers[FORWARDED_HEADER] === undefined);
    },
  );

  app.get<{ Querystring: { service?: string } }>(
    "/stats",
    { schema: { tags: ["tasks"], summary: "CPU and memory of running tasks (every service, or one), sampled by their nodes' drivers over about a second", querystring: Query, response: { 404: ErrorBody } } },
    async (req) => {
      const tasks = store.view((tx) => (req.query.service ? tx.tasksOfService(findService(tx, req.query.service).id) : tx.list("tasks")));
      const running = tasks
        .filter((t): t is Task & { nodeId: string } => t.desiredState === "running" && t.status.state === "running" && t.nodeId !== undefined)
        .sort((a, b) => a.serviceName.localeCompare(b.serviceName) || a.slot - b.slot);
      const byNode = new Map<string, string[]>();
      for (const t of running) byNode.set(t.nodeId, [...(byNode.get(t.nodeId) ?? []), t.id]);
      const reports = new Map<string, TaskStatsReport>();
      await Promise.all(
        [...byNode].map(async ([nodeId, ids]) => {
          // A node that cannot answer marks its tasks, not the whole answer.
          const got = stats ? await stats.read(nodeId, ids).catch((err: unknown) => ids.map((taskId) => ({ taskId, error: err instanceof Error ? err.message : String(err) }))) : ids.map((taskId) => ({ taskId, error: "this manager reads no stats" }));
          for (const r of got) reports.set(r.taskId, r);
        }),
      );
      return running.map((t): TaskStatsRow => {
        const r = reports.get(t.id) ?? { taskId: t.id, error: "its node did not report it" };
        const limits = t.spec.limits;
        return {
          ...r,
          taskId: t.id,
          task: taskName(t),
          serviceName: t.serviceName,
          nodeId: t.nodeId,
          ...(t.status.containerId ? { containerId: t.status.containerId } : {}),
          ...(t.status.pid ? { pid: t.status.pid } : {}),
          ...(limits?.cpus !== undefined ? { cpuLimit: limits.cpus } : {}),
          ...(limits?.memoryBytes !== undefined ? { memoryLimitBytes: limits.memoryBytes } : {}),
        };
      });
    },
  );
};
