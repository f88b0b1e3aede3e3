import type { FastifyPluginAsync } from "fastify";
import { Type } from "@sinclair/typebox";
import type { ApiDeps } from "./deps.js";

/** What the process hosting the API exposes about itself. */
export interface SystemControl {
  info(): Record<string, unknown>;
  /** Stops the controllers, then (stopTasks) every task gracefully; answers how many. */
  shutdown(opts: { stopTasks: boolean }): Promise<{ stoppedTasks: number }>;
  /** Closes the API and ends the process; called once the shutdown answer has been sent. */
  exit(): Promise<void>;
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
    async (req, reply) => {
      const result = await deps.system.shutdown({ stopTasks: req.body.stopTasks ?? false });
      // Closing the server waits for in-flight requests, this one included: close after it is sent.
      reply.raw.once("finish", () => void deps.system.exit());
      return result;
    },
  );
};
