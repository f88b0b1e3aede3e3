import type { AddressInfo, Server } from "node:net";
import type { ListenerSpec } from "./types.js";

/** Binds a TCP server (net or http); resolves the bound port, rejects with the bind error (EADDRINUSE names host:port). */
export function listen(server: Server, spec: ListenerSpec): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once("error", onError);
    server.listen({ host: spec.host, port: spec.port, exclusive: true }, () => {
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
