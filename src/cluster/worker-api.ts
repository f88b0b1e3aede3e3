import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import { BatonError } from "../lib/errors.js";
import type { Logger } from "../lib/log.js";

export interface WorkerControl {
  info(): Record<string, unknown>;
  shutdown(opts: { stopTasks: boolean }): Promise<{ stoppedTasks: number }>;
  /** Stops every task, tells the manager, forgets the cluster (credentials, config). */
  leave(): Promise<{ stoppedTasks: number }>;
  exit(): Promise<void>;
}

/**
 * A worker's local API (DIR/baton.sock): only what concerns this host — info, down, leave.
 * Cluster state lives on the managers; asking a worker for it gets a clear refusal.
 */
export async function buildWorkerApp(ctl: WorkerControl, log: Logger): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: log.child({ component: "api" }) as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }), forceCloseConnections: true });
  app.setErrorHandler((err: Error, _req, reply) => {
    if (err instanceof BatonError) return reply.status(err.status).send(err.toJSON());
    return reply.status(500).send(new BatonError("INTERNAL", err.message).toJSON());
  });
  app.get("/v1/info", () => ctl.info());
  const finish = (result: Promise<{ stoppedTasks: number }>) => async (_req: unknown, reply: { raw: NodeJS.EventEmitter }) => {
    const r = await result;
    reply.raw.once("finish", () => void ctl.exit());
    return r;
  };
  app.post<{ Body: { stopTasks?: boolean } | undefined }>("/v1/shutdown", (req, reply) => finish(ctl.shutdown({ stopTasks: req.body?.stopTasks === true }))(req, reply));
  app.post("/v1/leave", (req, reply) => finish(ctl.leave())(req, reply));
  app.setNotFoundHandler((req, reply) =>
    reply
      .status(503)
      .send(new BatonError("UNAVAILABLE", `this node is a worker: worker nodes cannot view or change cluster state (${req.method} ${req.url}); run the command on a manager, e.g. BATON_HOST=tcp://MANAGER:4242`).toJSON()),
  );
  return app;
}
