import type { FastifyPluginAsync } from "fastify";
import { Type } from "@sinclair/typebox";
import type { ApiDeps } from "./app.js";

/** What the process hosting the API exposes about itself. */
export interface SystemControl {
  info(): Record<string, unknown>;
  /** Stops controllers, then (stopTasks) every task gracefully, then the process. */
  shutdown(opts: { stopTasks: boolean }): Promise<{ stoppedTasks: number }>;
}

export const systemRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  app.get("/info", { schema: { tags: ["system"], summary: "Version, node, store revision, data dir" } }, () => ({
    ...deps.system.info(),
    revision: deps.store.revision(),
  }));
  app.post<{ Body: { stopTasks?: boolean } }>(
    "/shutdown",
    {
      schema: {
        tags: ["system"],
        summary: "Stop this process; with stopTasks, first stop every task gracefully (baton down)",
        body: Type.Object({ stopTasks: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
      },
    },
    (req) => deps.system.shutdown({ stopTasks: req.body.stopTasks ?? false }),
  );
};
