import type { AddressInfo, Server } from "node:net";
import type { ListenerSpec } from "./types.js";

/**
 * SO_REUSEPORT on every mesh listener: `-p 80:80` puts a published listener on 0.0.0.0:80 beside
 * service addresses on 127.77.x.y:80 and 198.18.x.y:80 (this service's, other services'). Linux
 * refuses a wildcard and a specific bind of one port unless both sockets set it; with it, a
 * connection goes to the most specific listener (the service address), the rest to 0.0.0.0. A
 * program outside Baton holding the port without the option still makes the bind fail.
 */
export const MESH_REUSE_PORT = true;

/** Binds a TCP server (net or http); resolves the bound port, rejects with the bind error (EADDRINUSE names host:port). */
export function listen(server: Server, spec: ListenerSpec): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once("error", onError);
    server.listen({ host: spec.host, port: spec.port, exclusive: true, reusePort: MESH_REUSE_PORT }, () => {
      server.off("error", onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Stops accepting. Resolves at once: connections in flight drain on their own (or at a drain deadline). */
export function closeServer(server: Server): Promise<void> {
  server.close(() => {});
  return Promise.resolve();
}
