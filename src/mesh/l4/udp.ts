import dgram from "node:dgram";
import { MESH_REUSE_PORT } from "../bind.js";
import type { ListenerDeps, ListenerHandle } from "../listener.js";
import type { BackendState, Cuttable } from "../pool.js";
import type { ListenerSpec } from "../types.js";

/** A client address without traffic for this long loses its session (and its backend socket). */
export const UDP_IDLE_MS = 30_000;
/** Datagrams kept per new client while it waits for a first backend; beyond that they drop (UDP may). */
const MAX_QUEUED = 64;

interface Session extends Cuttable {
  socket?: dgram.Socket;
  backend?: BackendState;
  queue: Buffer[];
  lastSeen: number;
  cancelIdle: () => void;
}

/**
 * UDP forwarding with a session per client address: one connected socket per client toward
 * the backend chosen for its first datagram, so replies come back on that socket and are sent
 * to the client from the listener's address. Sessions end after UDP_IDLE_MS without traffic in
 * either direction (checked on a Clock timer, not reset per datagram).
 */
export async function listenUdp(spec: ListenerSpec, deps: ListenerDeps, idleMs = UDP_IDLE_MS): Promise<ListenerHandle> {
  const pool = deps.pool(spec.serviceId);
  const server = dgram.createSocket({ type: net4or6(spec.host), reuseAddr: false, reusePort: MESH_REUSE_PORT });
  const sessions = new Map<string, Session>();

  server.on("message", (msg, rinfo) => {
    if (spec.admit && !spec.admit(rinfo.address)) return;
    const key = `${rinfo.address}:${rinfo.port}`;
    const s = sessions.get(key);
    if (s) {
      s.lastSeen = deps.clock.now();
      if (s.socket) s.socket.send(msg);
      else if (s.queue.length < MAX_QUEUED) s.queue.push(msg);
      return;
    }
    openSession(key, rinfo, msg);
  });
  server.on("error", (err) => deps.log.warn({ err, serviceId: spec.serviceId }, "udp listener error"));

  function openSession(key: string, rinfo: dgram.RemoteInfo, first: Buffer): void {
    const s: Session = {
      queue: [first],
      lastSeen: deps.clock.now(),
      cancelIdle: () => {},
      cut: () => endSession(key, s),
    };
    sessions.set(key, s);
    armIdle(key, s, idleMs);
    void Promise.resolve(deps.acquire(pool)).then((b) => {
      if (sessions.get(key) !== s) return;
      if (!b) return endSession(key, s);
      const socket = dgram.createSocket(net4or6(b.host));
      s.socket = socket;
      s.backend = b;
      b.acquire();
      b.holders.add(s);
      socket.on("message", (reply) => {
        s.lastSeen = deps.clock.now();
        server.send(reply, rinfo.port, rinfo.address);
      });
      socket.on("error", () => {
        b.errors++;
        endSession(key, s);
      });
      socket.connect(b.port, b.host, () => {
        for (const m of s.queue) socket.send(m);
        s.queue = [];
      });
    });
  }

  function armIdle(key: string, s: Session, ms: number): void {
    s.cancelIdle = deps.clock.setTimer(ms, () => {
      const quietFor = deps.clock.now() - s.lastSeen;
      if (quietFor >= idleMs) endSession(key, s);
      else armIdle(key, s, idleMs - quietFor);
    });
  }

  function endSession(key: string, s: Session): void {
    if (sessions.get(key) !== s) return;
    sessions.delete(key);
    s.cancelIdle();
    if (s.socket) {
      // connect() may still be pending: close() then throws ERR_SOCKET_DGRAM_NOT_RUNNING on old Nodes.
      try {
        s.socket.close();
      } catch {
        /* already closed */
      }
    }
    if (s.backend) {
      s.backend.holders.delete(s);
      s.backend.release();
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.bind({ address: spec.host, port: spec.port, exclusive: true }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    spec,
    port: server.address().port,
    close: async () => {
      for (const [k, s] of [...sessions]) endSession(k, s);
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const net4or6 = (host: string): "udp4" | "udp6" => (host.includes(":") ? "udp6" : "udp4");
