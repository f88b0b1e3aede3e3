import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import { randomUUID } from "node:crypto";
import { WebSocketServer, type WebSocket } from "ws";
import type { Clock } from "../lib/clock.js";
import { BatonError } from "../lib/errors.js";
import type { Logger } from "../lib/log.js";
import type { Dispatcher } from "../dispatcher/dispatcher.js";
import type { NodeDescription, TaskStatsReport } from "../dispatcher/protocol.js";
import { verifyPeer, type PeerIdentity, type PeerVerifierDeps } from "../ca/verify.js";
import { validDescription, validStats, validUpdates } from "./validate.js";
import { CloseCode, SESSION_PATH, parseMessage, type AgentMessage, type ManagerMessage } from "./wire.js";

/** How long a node may take to answer a stats request. */
const STATS_TIMEOUT_MS = 10_000;

/** A session that has not registered within this time is closed. */
const REGISTER_TIMEOUT_MS = 10_000;
/** A node this far behind in reading its session is cut off; it reconnects and gets a fresh full set. */
const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

export interface SessionServerDeps {
  dispatcher: Dispatcher;
  clock: Clock;
  log: Logger;
  /** Verification of the node's certificate (CA, clock, revocations); consulted per connection. */
  verifier: PeerVerifierDeps;
  /** Every manager's host:port, told to each agent as it registers (HA: its failover list). */
  managers?: () => string[];
}

/** A log stream a manager opened on a node: lines come back through the node's session. */
interface LogRequest {
  onLines: (lines: string[]) => void;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface Conn {
  ws: WebSocket;
  peer: PeerIdentity;
  sessionId?: string;
  unsubs: (() => void)[];
  lastHeard: number;
}

/**
 * The manager's end of node sessions over mutual TLS: one WebSocket per node, carrying what
 * `Dispatcher.localSession()` carries in process. The node is who its certificate says (CN),
 * never what its messages claim; a newer session of the same node replaces the older one, whose
 * messages are refused from then on.
 */
export class SessionServer {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 * 1024 });
  /** The current session of every connected node. */
  private readonly current = new Map<string, Conn>();
  private readonly logRequests = new Map<number, LogRequest & { conn: Conn }>();
  private nextLogId = 1;
  private readonly statsRequests = new Map<number, { conn: Conn; resolve: (s: TaskStatsReport[]) => void; reject: (e: Error) => void; cancelTimer: () => void }>();
  private nextStatsId = 1;
  private cancelSweep: (() => void) | undefined;

  constructor(private readonly deps: SessionServerDeps) {}

  /** For the HTTPS server's `upgrade` event: takes the session path, leaves anything else alone. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if ((req.url ?? "").split("?")[0] !== SESSION_PATH) return false;
    let peer: PeerIdentity;
    try {
      const tls = req.socket as TLSSocket;
      if (!tls.authorized) throw new BatonError("UNAUTHORIZED", `no valid cluster certificate: ${String(tls.authorizationError ?? "none presented")}`);
      peer = verifyPeer(tls.getPeerCertificate(), this.deps.verifier);
      if (peer.role !== "worker" && peer.role !== "manager") throw new BatonError("FORBIDDEN", `a ${peer.role} certificate cannot open a node session`);
    } catch (err) {
      const e = err instanceof BatonError ? err : new BatonError("UNAUTHORIZED", String(err));
      this.deps.log.warn({ remote: req.socket.remoteAddress, reason: e.message }, "node session refused");
      const body = JSON.stringify(e.toJSON());
      socket.end(`HTTP/1.1 ${e.status} Refused\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      return true;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, peer, req.socket.remoteAddress));
    return true;
  }

  start(): void {
    // Connections silent for two grace periods are dead (a partition leaves them half-open).
    const period = this.deps.dispatcher.heartbeatPeriodMs;
    const sweep = (): void => {
      const now = this.deps.clock.now();
      for (const c of this.wss.clients) {
        const conn = this.conns.get(c);
        if (conn && now - conn.lastHeard > 2 * this.deps.dispatcher.heartbeatGraceMs) c.terminate();
      }
      this.cancelSweep = this.deps.clock.setTimer(period, sweep);
    };
    this.cancelSweep = this.deps.clock.setTimer(period, sweep);
  }

  private readonly conns = new WeakMap<WebSocket, Conn>();

  /** Ends a node's session for good (node rm): it is told not to come back, then cut. */
  disconnect(nodeId: string, message: string): void {
    const c = this.current.get(nodeId);
    if (!c) return;
    this.send(c, { type: "closed", code: "FORBIDDEN", message });
    c.ws.close(CloseCode.removed, "node removed");
  }

  /** Tells a worker it was promoted (it asks for its manager certificate itself); false when it has no session here. */
  promote(nodeId: string): boolean {
    const c = this.current.get(nodeId);
    if (!c?.sessionId || c.peer.role !== "worker") return false;
    this.send(c, { type: "promote" });
    return true;
  }

  /** Cuts every session (they reconnect by themselves): a manager handing over, or a test. */
  disconnectAll(): void {
    for (const c of this.wss.clients) c.terminate();
  }

  /** Nodes with a live session. */
  connectedNodes(): string[] {
    return [...this.current.keys()];
  }

  /**
   * Streams a task's log lines from the node that runs it: the last `tail` lines, then (follow)
   * new ones until cancelled. `done` settles when the node ended the stream.
   */
  openLogs(nodeId: string, taskId: string, opts: { tail?: number; follow: boolean }, onLines: (lines: string[]) => void): { done: Promise<void>; cancel: () => void } {
    const conn = this.current.get(nodeId);
    if (!conn) return { done: Promise.reject(new BatonError("UNAVAILABLE", `node ${nodeId} is not connected: its logs cannot be read now`)), cancel: () => undefined };
    const id = this.nextLogId++;
    const done = new Promise<void>((resolve, reject) => this.logRequests.set(id, { conn, onLines, resolve, reject }));
    this.send(conn, { type: "logs-open", id, taskId, follow: opts.follow, ...(opts.tail !== undefined ? { tail: opts.tail } : {}) });
    return {
      done,
      cancel: () => {
        const r = this.logRequests.get(id);
        if (!r) return;
        this.logRequests.delete(id);
        this.send(conn, { type: "logs-cancel", id });
        r.resolve();
      },
    };
  }

  /** Asks the node that runs these tasks for their resource use (its drivers sample it). */
  taskStats(nodeId: string, taskIds: string[]): Promise<TaskStatsReport[]> {
    const conn = this.current.get(nodeId);
    if (!conn) return Promise.reject(new BatonError("UNAVAILABLE", `node ${nodeId} is not connected: its tasks' stats cannot be read now`));
    const id = this.nextStatsId++;
    return new Promise((resolve, reject) => {
      // A sample takes about a second (docker's stats, a CPU window): 10 s means the node is stuck.
      const cancelTimer = this.deps.clock.setTimer(STATS_TIMEOUT_MS, () => {
        if (!this.statsRequests.delete(id)) return;
        reject(new BatonError("UNAVAILABLE", `node ${nodeId} did not answer for its tasks' stats within ${STATS_TIMEOUT_MS / 1000} s`));
      });
      this.statsRequests.set(id, { conn, resolve, reject, cancelTimer });
      this.send(conn, { type: "stats-get", id, taskIds });
    });
  }

  close(): void {
    this.cancelSweep?.();
    for (const c of this.wss.clients) c.terminate();
    this.wss.close();
  }

  private accept(ws: WebSocket, peer: PeerIdentity, remote: string | undefined): void {
    const conn: Conn = { ws, peer, unsubs: [], lastHeard: this.deps.clock.now() };
    this.conns.set(ws, conn);
    const log = this.deps.log.child({ nodeId: peer.nodeId });
    const registerTimer = this.deps.clock.setTimer(REGISTER_TIMEOUT_MS, () => {
      if (!conn.sessionId) ws.close(CloseCode.protocol, "no register");
    });
    ws.on("message", (data) => {
      conn.lastHeard = this.deps.clock.now();
      const m = parseMessage<AgentMessage>(data);
      if (!m) return ws.close(CloseCode.protocol, "malformed message");
      if (m.type === "register") {
        registerTimer();
        void this.register(conn, m.desc, remote).catch((err: unknown) => {
          log.warn({ err }, "node registration failed");
          ws.close(CloseCode.protocol, err instanceof Error ? err.message.slice(0, 100) : "register failed");
        });
        return;
      }
      // Only the node's current session speaks for it: a stale connection's messages are refused.
      if (!conn.sessionId || this.current.get(peer.nodeId) !== conn) return ws.close(CloseCode.replaced, "stale session");
      this.onMessage(conn, m);
    });
    ws.on("close", () => {
      registerTimer();
      for (const u of conn.unsubs) u();
      conn.unsubs = [];
      for (const [id, r] of this.logRequests) {
        if (r.conn !== conn) continue;
        this.logRequests.delete(id);
        r.reject(new BatonError("UNAVAILABLE", `node ${peer.nodeId} disconnected while its logs were read`));
      }
      for (const [id, r] of this.statsRequests) {
        if (r.conn !== conn) continue;
        this.statsRequests.delete(id);
        r.cancelTimer();
        r.reject(new BatonError("UNAVAILABLE", `node ${peer.nodeId} disconnected while its tasks' stats were read`));
      }
      if (this.current.get(peer.nodeId) === conn) {
        this.current.delete(peer.nodeId);
        log.info({ sessionId: conn.sessionId }, "node session closed");
      }
    });
    ws.on("error", (err) => log.debug({ err }, "node session error"));
  }

  private async register(conn: Conn, desc: NodeDescription, remote: string | undefined): Promise<void> {
    const { peer } = conn;
    if (!validDescription(desc)) throw new BatonError("BAD_REQUEST", `node ${peer.nodeId} sent a malformed description`);
    if (desc.nodeId !== peer.nodeId) throw new BatonError("FORBIDDEN", `node ${peer.nodeId} cannot register as ${String(desc.nodeId)}`);
    const prev = this.current.get(peer.nodeId);
    conn.sessionId = randomUUID();
    this.current.set(peer.nodeId, conn);
    if (prev && prev !== conn) prev.ws.close(CloseCode.replaced, "replaced by a newer session");
    for (const u of conn.unsubs) u();
    conn.unsubs = [];
    // Identity and role come from the certificate; the address defaults to where the node dials from.
    const address = desc.address ?? remote?.replace(/^::ffff:/, "");
    await this.deps.dispatcher.register({ ...desc, role: peer.role === "manager" ? "manager" : "worker", ...(address ? { address } : {}) });
    if (this.current.get(peer.nodeId) !== conn) return;
    const managers = this.deps.managers?.();
    this.send(conn, { type: "registered", sessionId: conn.sessionId, heartbeatPeriodMs: this.deps.dispatcher.heartbeatPeriodMs, ...(managers?.length ? { managers } : {}) });
  }

  private onMessage(conn: Conn, m: AgentMessage): void {
    const nodeId = conn.peer.nodeId;
    const d = this.deps.dispatcher;
    switch (m.type) {
      case "heartbeat":
        void d.heartbeat(nodeId).catch((err: unknown) => this.deps.log.warn({ err, nodeId }, "heartbeat write failed"));
        return;
      case "subscribe":
        if (m.stream === "assignments") conn.unsubs.push(d.subscribe(nodeId, (change) => this.send(conn, { type: "assignments", change })));
        else if (m.stream === "endpoints") conn.unsubs.push(d.subscribeEndpoints((change) => this.send(conn, { type: "endpoints", change })));
        else if (m.stream === "volumes") conn.unsubs.push(d.subscribeVolumes((names) => this.send(conn, { type: "volumes", names })));
        else if (m.stream === "attachable") conn.unsubs.push(d.subscribeAttachable((networks) => this.send(conn, { type: "attachable", networks })));
        return;
      case "status":
        d.reportStatus(validUpdates(m.updates), nodeId).then(
          () => this.send(conn, { type: "ack", id: m.id }),
          (err: unknown) => {
            const e = err instanceof BatonError ? err : new BatonError("INTERNAL", "status write failed");
            this.send(conn, { type: "nack", id: m.id, code: e.code, message: e.message });
          },
        );
        return;
      case "logs": {
        const r = this.logRequests.get(m.id);
        if (r?.conn === conn && Array.isArray(m.lines)) r.onLines(m.lines.map(String));
        return;
      }
      case "logs-end": {
        const r = this.logRequests.get(m.id);
        if (r?.conn !== conn) return;
        this.logRequests.delete(m.id);
        if (m.error) r.reject(new BatonError("UNAVAILABLE", m.error));
        else r.resolve();
        return;
      }
      case "stats": {
        const r = this.statsRequests.get(m.id);
        if (r?.conn !== conn) return;
        this.statsRequests.delete(m.id);
        r.cancelTimer();
        r.resolve(validStats(m.stats));
        return;
      }
      case "leave":
        void d.leave(nodeId).catch((err: unknown) => this.deps.log.warn({ err, nodeId }, "leave failed"));
        return;
      default:
        conn.ws.close(CloseCode.protocol, "unknown message");
    }
  }

  private send(conn: Conn, m: ManagerMessage): void {
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    if (conn.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.deps.log.warn({ nodeId: conn.peer.nodeId }, "node session too far behind; closing it (it reconnects with a full set)");
      conn.ws.terminate();
      return;
    }
    conn.ws.send(JSON.stringify(m));
  }
}
