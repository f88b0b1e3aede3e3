import net from "node:net";
import { isConnectFailure, MAX_ATTEMPTS, type ListenerDeps, type ListenerHandle } from "../listener.js";
import type { BackendState, Cuttable } from "../pool.js";
import type { ListenerSpec } from "../types.js";
import { listen, closeServer } from "../bind.js";

/**
 * L4: each accepted connection gets one backend connection, then bytes are piped both ways.
 *
 * Speed: after connect the only JS per chunk is stream.pipe's own (the Node TCP pipe that
 * matched nginx in shared/bench). The client socket stays paused (no 'data' listener) until the
 * backend has connected, so nothing is buffered in JS and a failed connect can be retried on
 * another backend with the client none the wiser.
 *
 * Half-close: both sockets are allowHalfOpen and pipe() ends the other side on 'end', so a
 * client's FIN reaches the backend while the response still flows back.
 */
export async function listenTcp(spec: ListenerSpec, deps: ListenerDeps): Promise<ListenerHandle> {
  const pool = deps.pool(spec.serviceId);
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    client.on("error", () => client.destroy());
    if (spec.admit && !spec.admit(client.remoteAddress ?? "")) return void client.destroy();
    void connectClient(client, 0, new Set()).catch((err: unknown) => {
      deps.log.warn({ err, serviceId: spec.serviceId }, "tcp connection failed");
      client.destroy();
    });
  });

  async function connectClient(client: net.Socket, attempt: number, tried: Set<BackendState>): Promise<void> {
    const ac = new AbortController();
    const onClose = (): void => ac.abort();
    client.once("close", onClose);
    const b = await deps.acquire(pool, tried, ac.signal);
    client.off("close", onClose);
    if (!b || client.destroyed) {
      client.destroy();
      return;
    }
    const startedAt = deps.clock.now();
    const upstream = net.connect({ host: b.host, port: b.port, allowHalfOpen: true, noDelay: true });
    b.acquire();
    const pair: Cuttable = { cut: () => upstream.destroy() };
    b.holders.add(pair);
    let connected = false;
    upstream.once("close", () => {
      b.holders.delete(pair);
      b.release();
      if (connected) client.destroy();
    });
    upstream.once("connect", () => {
      connected = true;
      b.latency.record(deps.clock.now() - startedAt);
      if (client.destroyed) return void upstream.destroy();
      client.pipe(upstream);
      upstream.pipe(client);
      client.once("close", () => upstream.destroy());
    });
    upstream.on("error", (err) => {
      upstream.destroy();
      if (connected) return void client.destroy();
      b.errors++;
      b.eject(deps.clock.now());
      tried.add(b);
      if (attempt + 1 < MAX_ATTEMPTS && isConnectFailure(err) && !client.destroyed) {
        void connectClient(client, attempt + 1, tried).catch(() => client.destroy());
      } else client.destroy();
    });
  }

  const port = await listen(server, spec);
  return { spec, port, close: () => closeServer(server) };
}
