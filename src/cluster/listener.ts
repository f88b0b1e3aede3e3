import type { FastifyInstance } from "fastify";
import { buildApp, type ApiDeps } from "../api/app.js";
import type { NodeCredentials } from "../ca/node-cert.js";
import { serverTlsOptions } from "../ca/tls.js";
import type { SessionServer } from "../session/server.js";

/**
 * A manager's TCP listener (default :4242), TLS 1.3 only: node sessions (WebSocket upgrade on
 * /v1/session), joins, and the API for the remote CLI. A client certificate is asked for in the
 * handshake but checked per request, because a joining node has none yet (api/app.ts lets only
 * the two join routes through without one).
 */
export async function startClusterListener(args: { deps: ApiDeps; host: string; port: number; credentials: NodeCredentials; sessions: SessionServer }): Promise<{ app: FastifyInstance; port: number; setCredentials(c: NodeCredentials): void }> {
  const app = await buildApp(args.deps, { https: { ...serverTlsOptions(args.credentials), rejectUnauthorized: false } });
  app.server.on("upgrade", (req, socket, head) => {
    if (!args.sessions.handleUpgrade(req, socket, head as Buffer)) socket.destroy();
  });
  await app.listen({ host: args.host, port: args.port });
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : args.port;
  return {
    app,
    port,
    // A renewed certificate applies to the next handshake; live sessions keep theirs.
    setCredentials: (c) => (app.server as unknown as { setSecureContext(o: object): void }).setSecureContext({ ...serverTlsOptions(c), rejectUnauthorized: false }),
  };
}
