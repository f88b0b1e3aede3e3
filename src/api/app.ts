import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyError } from "fastify";
import swagger from "@fastify/swagger";
import { Ajv } from "ajv";
import { BatonError, validationError } from "../lib/errors.js";
import { problemFromAjv } from "./problems.js";
import { servicesRoutes } from "./services.js";
import { nodesRoutes } from "./nodes.js";
import { networksRoutes } from "./networks.js";
import { tasksRoutes } from "./tasks.js";
import { eventsRoutes } from "./events.js";
import { secretsRoutes } from "./secrets.js";
import { logsRoutes } from "./logs.js";
import { statsRoutes } from "./stats.js";
import { systemRoutes } from "./system.js";
import { snapshotRoutes } from "./snapshot.js";
import type { ApiDeps } from "./deps.js";
import type { TlsOptions } from "node:tls";
import { ANONYMOUS_ROUTES, clusterRoutes, peerOf } from "./cluster.js";

/** The only routes a worker's certificate reaches: renewing it, and taking a promotion. */
const WORKER_ROUTES = new Set(["/v1/join/renew", "/v1/join/promote"]);

export type { ApiDeps } from "./deps.js";


export const API_PREFIX = "/v1";

/** Requests that asked for `?stale=true`: served from this manager's cache without a quorum read. */
const staleRequests = new WeakSet<object>();
/** GETs that are about this process, not cluster state: no quorum read (they answer with etcd down). */
const LOCAL_READS = new Set(["/v1/info", "/v1/join/ca", "/openapi.json"]);

/**
 * The API: REST for nodes, services, tasks and logs, SSE for changes, and the OpenAPI document
 * built from the same TypeBox schemas that validate the bodies.
 */
export async function buildApp(deps: ApiDeps, opts: { https?: TlsOptions } = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...(opts.https ? { https: opts.https } : {}),
    // `stale` is the API's, not a route's: taken off the URL here, so every route's query schema stays strict.
    rewriteUrl: (req) => {
      const url = req.url ?? "/";
      const q = url.indexOf("?");
      if (q < 0 || !/(^|&)stale=/.test(url.slice(q + 1))) return url;
      const params = new URLSearchParams(url.slice(q + 1));
      if (params.get("stale") === "true" || params.get("stale") === "1") staleRequests.add(req);
      params.delete("stale");
      const rest = params.toString();
      return url.slice(0, q) + (rest ? `?${rest}` : "");
    },
    loggerInstance: deps.log.child({ component: "api" }) as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }), bodyLimit: deps.bodyLimit ?? 1024 * 1024, forceCloseConnections: true });
  // Typos are errors (additionalProperties: false, nothing removed), no type coercion of
  // bodies, and every problem reported at once; the API is behind a 0600 socket or mTLS.
  const ajv = new Ajv({ allErrors: true, removeAdditional: false, coerceTypes: false, useDefaults: false, strict: false, verbose: true });
  app.setValidatorCompiler(({ schema }) => ajv.compile(schema));
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.validation) {
      // The message names what the body describes: "invalid network: name: …".
      const subject = /^\/v1\/(networks|volumes)\b/.exec(req.url)?.[1]?.slice(0, -1);
      return reply.status(400).send(validationError(err.validation.map((e) => problemFromAjv(e as never)), subject).toJSON());
    }
    if (err instanceof BatonError) return reply.status(err.status).send(err.toJSON());
    if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      return reply.status(413).send(new BatonError("PAYLOAD_TOO_LARGE", `request body is larger than ${deps.bodyLimit ?? 1024 * 1024} bytes`).toJSON());
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.status(400).send(new BatonError("BAD_REQUEST", err.message).toJSON());
    }
    req.log.error({ err }, "request failed");
    return reply.status(500).send(new BatonError("INTERNAL", "internal error; see the manager's log").toJSON());
  });
  app.setNotFoundHandler((req, reply) => reply.status(404).send(new BatonError("NOT_FOUND", `no route ${req.method} ${req.url}`).toJSON()));

  // Over TCP every request needs a client certificate of the cluster (a manager's or a user's),
  // except the two a joining node makes before it has one.
  if (opts.https) {
    const cluster = deps.cluster;
    if (!cluster) throw new Error("the TCP API needs cluster membership");
    app.addHook("onRequest", async (req) => {
      if (ANONYMOUS_ROUTES.has(`${req.method} ${req.url.split("?")[0]}`)) return;
      const { peer } = peerOf(req, cluster.verifier);
      if (peer.role === "worker" && !WORKER_ROUTES.has(req.url.split("?")[0]!))
        throw new BatonError("FORBIDDEN", "a worker's certificate cannot use the API: worker nodes cannot view or change cluster state", [{ path: ["peer"], problem: "wrong-role" }]);
    });
  }
  // Linearizable requests (etcd store): before a request is handled, the cache catches up with a
  // quorum read of etcd's revision, so no manager answers from state older than a write
  // acknowledged anywhere before the request. Writes too: a handler resolves names and checks
  // versions in the cache, and an error decided there (NOT_FOUND, NAME_IN_USE, VERSION_CONFLICT)
  // is never checked by etcd's compares, so it must come from a current cache (a name deleted and
  // created again elsewhere was answered NOT_FOUND from the old id). With etcd unreachable this
  // fails with UNAVAILABLE (503), not a hang.
  const sync = deps.store.sync?.bind(deps.store);
  if (sync) {
    app.addHook("preHandler", async (req) => {
      if ((req.method === "GET" && staleRequests.has(req.raw)) || LOCAL_READS.has(req.url.split("?")[0]!)) return;
      await sync();
    });
  }
  await app.register(swagger, {
    openapi: { info: { title: "Baton API", version: "1" }, servers: [{ url: "unix:/path/to/baton.sock" }] },
  });
  await app.register(systemRoutes, { prefix: API_PREFIX, deps });
  await app.register(servicesRoutes, { prefix: API_PREFIX, deps });
  await app.register(nodesRoutes, { prefix: API_PREFIX, deps });
  await app.register(networksRoutes, { prefix: API_PREFIX, deps });
  await app.register(tasksRoutes, { prefix: API_PREFIX, deps });
  await app.register(logsRoutes, { prefix: API_PREFIX, deps });
  await app.register(statsRoutes, { prefix: API_PREFIX, deps });
  await app.register(eventsRoutes, { prefix: API_PREFIX, deps });
  await app.register(secretsRoutes, { prefix: API_PREFIX, deps });
  await app.register(clusterRoutes, { prefix: API_PREFIX, deps });
  await app.register(snapshotRoutes, { prefix: API_PREFIX, deps });
  app.get("/openapi.json", { schema: { hide: true } }, () => app.swagger());
  return app;
}
