import { WebSocket } from "ws";
import type { Clock } from "../lib/clock.js";
import { BatonError } from "../lib/errors.js";
import type { Logger } from "../lib/log.js";
import type { AgentSession, AssignmentChange, EndpointsChange, NetworkAttachment, NodeDescription, TaskStatsReport, TaskStatusUpdate } from "../dispatcher/protocol.js";
import type { NodeCredentials } from "../ca/node-cert.js";
import { clientTlsOptions } from "../ca/tls.js";
import { RevocationList } from "../ca/revocation.js";
import { CloseCode, SESSION_PATH, parseMessage, type AgentMessage, type ManagerMessage } from "./wire.js";

/** Reconnect delays: quick first (a manager restart), doubling to a cap. */
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 2000;

/** How the node serves a manager's request for a task's logs. */
export interface NodeLogServer {
  open(taskId: string, opts: { tail?: number; follow: boolean }, onLines: (lines: string[]) => void): { done: Promise<void>; cancel: () => void };
}

/** How the node answers a manager's request for its tasks' resource use. */
export type NodeStatsServer = (taskIds: string[]) => Promise<TaskStatsReport[]>;

export interface RemoteSessionDeps {
  /** Managers as host:port; tried in turn until one answers. */
  managers: string[];
  credentials: NodeCredentials;
  clock: Clock;
  log: Logger;
  /** Called once when the cluster removed this node: the session will not reconnect. */
  onRemoved?: (message: string) => void;
  /** The manager list changed (a manager joined): the node keeps it for its next start. */
  onManagers?: (managers: string[]) => void;
  /** `baton node promote` of this node: it becomes a manager (asked again until it does). */
  onPromote?: () => void;
}

interface PendingStatus {
  id: number;
  updates: TaskStatusUpdate[];
  resolve: () => void;
  reject: (err: unknown) => void;
  sent: boolean;
}

/**
 * The agent's end of a node session across hosts: the AgentSession of protocol.ts over one
 * WebSocket on mutual TLS. It reconnects by itself, re-registers and re-subscribes, and the
 * manager answers with fresh full sets, so the agent and the mesh reconcile to what the store
 * says after any outage. Status reports wait for a connection; one lost with its connection is
 * rejected, and the agent sends it again (reports are idempotent by sequence number).
 */
export class RemoteSession implements AgentSession {
  private ws: WebSocket | undefined;
  private sessionId: string | undefined;
  private desc: NodeDescription | undefined;
  private closed = false;
  private attempt = 0;
  private managerIndex = 0;
  private onAssignments: ((c: AssignmentChange) => void) | undefined;
  private onEndpoints: ((c: EndpointsChange) => void) | undefined;
  private onVolumes: ((names: string[]) => void) | undefined;
  private onAttachable: ((networks: NetworkAttachment[]) => void) | undefined;
  private readonly pending = new Map<number, PendingStatus>();
  private nextId = 1;
  private registered: { resolve: (v: { heartbeatPeriodMs: number }) => void; reject: (e: unknown) => void } | undefined;
  private periodMs = 500;
  private lastHeard = 0;
  private cancelRetry: (() => void) | undefined;
  private cancelPing: (() => void) | undefined;
  private logServer: NodeLogServer | undefined;
  private statsServer: NodeStatsServer | undefined;
  private readonly logStreams = new Map<number, () => void>();
  private wasConnected = false;

  private credentials: NodeCredentials;
  /** Where to connect, in turn: the configured list, then what managers say at registration. */
  private managers: string[];

  constructor(private readonly deps: RemoteSessionDeps) {
    this.credentials = deps.credentials;
    this.managers = [...deps.managers];
  }

  /** A renewed certificate: used from the next connection on. */
  setCredentials(c: NodeCredentials): void {
    this.credentials = c;
  }

  /** Where a manager's log requests are served from (the agent's log files). */
  serveLogs(server: NodeLogServer): void {
    this.logServer = server;
  }

  /** Where a manager's stats requests are answered from (the agent's drivers). */
  serveStats(server: NodeStatsServer): void {
    this.statsServer = server;
  }

  /** The manager this session is connected to, if any. */
  get connectedTo(): string | undefined {
    return this.sessionId ? this.managers[this.managerIndex % this.managers.length] : undefined;
  }

  register(desc: NodeDescription): Promise<{ heartbeatPeriodMs: number }> {
    this.desc = desc;
    return new Promise((resolve, reject) => {
      this.registered = { resolve, reject };
      this.connect();
    });
  }

  heartbeat(): Promise<void> {
    // While disconnected there is nobody to tell; the reconnect re-registers.
    if (this.sessionId) this.send({ type: "heartbeat" });
    return Promise.resolve();
  }

  assignments(onChange: (change: AssignmentChange) => void): () => void {
    this.onAssignments = onChange;
    if (this.sessionId) this.send({ type: "subscribe", stream: "assignments" });
    return () => (this.onAssignments = undefined);
  }

  attachableNetworks(onChange: (networks: NetworkAttachment[]) => void): () => void {
    this.onAttachable = onChange;
    if (this.sessionId) this.send({ type: "subscribe", stream: "attachable" });
    return () => (this.onAttachable = undefined);
  }

  volumes(onChange: (names: string[]) => void): () => void {
    this.onVolumes = onChange;
    if (this.sessionId) this.send({ type: "subscribe", stream: "volumes" });
    return () => (this.onVolumes = undefined);
  }

  endpoints(onChange: (change: EndpointsChange) => void): () => void {
    this.onEndpoints = onChange;
    if (this.sessionId) this.send({ type: "subscribe", stream: "endpoints" });
    return () => (this.onEndpoints = undefined);
  }

  reportStatus(updates: TaskStatusUpdate[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const p: PendingStatus = { id: this.nextId++, updates, resolve, reject, sent: false };
      this.pending.set(p.id, p);
      if (this.sessionId) this.sendStatus(p);
    });
  }

  /** Tells the manager this node leaves (it is marked down at once), then closes. */
  async leave(): Promise<void> {
    const ws = this.ws;
    if (this.sessionId && ws) await new Promise<void>((r) => ws.send(JSON.stringify({ type: "leave" } satisfies AgentMessage), () => r()));
    this.close();
  }

  close(): void {
    this.closed = true;
    this.cancelRetry?.();
    this.cancelPing?.();
    this.ws?.close(1000, "node stopping");
    this.ws = undefined;
    this.sessionId = undefined;
    this.failPending(new BatonError("UNAVAILABLE", "session closed"));
    for (const cancel of this.logStreams.values()) cancel();
    this.logStreams.clear();
  }

  private connect(): void {
    if (this.closed) return;
    const target = this.managers[this.managerIndex % this.managers.length]!;
    // The manager proves itself with a certificate of this cluster's CA: no hostname to check.
    const tls = clientTlsOptions(this.credentials, { caCertPem: this.credentials.caCertPem, clock: this.deps.clock, revocations: new RevocationList() }, { requireRole: "manager" });
    const ws = new WebSocket(`wss://${target}${SESSION_PATH}`, { ...tls, handshakeTimeout: 5000, perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
    this.ws = ws;
    ws.on("open", () => {
      this.lastHeard = this.deps.clock.now();
      this.send({ type: "register", desc: this.desc! });
    });
    ws.on("message", (data) => {
      this.lastHeard = this.deps.clock.now();
      const m = parseMessage<ManagerMessage>(data);
      if (m) this.onMessage(m);
    });
    ws.on("pong", () => (this.lastHeard = this.deps.clock.now()));
    ws.on("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString("utf8")));
      res.on("end", () => {
        const message = safeMessage(body) ?? `HTTP ${res.statusCode ?? "?"}`;
        if (res.statusCode === 401 || res.statusCode === 403) this.removed(message);
        else this.deps.log.warn({ manager: target, status: res.statusCode, message }, "manager refused the session");
        ws.terminate();
      });
    });
    ws.on("error", (err) => {
      if (!this.wasConnected || this.attempt === 0) this.deps.log.warn({ manager: target, err: err.message }, "cannot reach manager; retrying");
    });
    ws.on("close", (code) => this.onClose(ws, code));
  }

  private onMessage(m: ManagerMessage): void {
    switch (m.type) {
      case "registered": {
        this.sessionId = m.sessionId;
        this.periodMs = m.heartbeatPeriodMs;
        if (m.managers?.length && m.managers.join() !== this.managers.join()) {
          // Stay on the manager we reached; the others become the failover list.
          const here = this.managers[this.managerIndex % this.managers.length]!;
          this.managers = m.managers.includes(here) ? m.managers : [here, ...m.managers];
          this.managerIndex = this.managers.indexOf(here);
          this.deps.onManagers?.(this.managers);
        }
        this.attempt = 0;
        if (this.wasConnected) this.deps.log.info({ manager: this.connectedTo }, "session to manager restored");
        this.wasConnected = true;
        if (this.onAssignments) this.send({ type: "subscribe", stream: "assignments" });
        if (this.onEndpoints) this.send({ type: "subscribe", stream: "endpoints" });
        if (this.onVolumes) this.send({ type: "subscribe", stream: "volumes" });
        if (this.onAttachable) this.send({ type: "subscribe", stream: "attachable" });
        for (const p of this.pending.values()) if (!p.sent) this.sendStatus(p);
        this.ping();
        this.registered?.resolve({ heartbeatPeriodMs: m.heartbeatPeriodMs });
        this.registered = undefined;
        return;
      }
      case "assignments":
        return this.onAssignments?.(m.change);
      case "endpoints":
        return this.onEndpoints?.(m.change);
      case "volumes":
        // The node removes the data of volumes NOT in this set: a malformed set is ignored, never read as empty.
        if (!Array.isArray(m.names) || !m.names.every((n) => typeof n === "string")) return void this.deps.log.warn("malformed volume set from the manager: ignored");
        return this.onVolumes?.(m.names);
      case "attachable": {
        const valid = Array.isArray(m.networks) && m.networks.every((n) => n && typeof n.id === "string" && typeof n.name === "string" && typeof n.internal === "boolean");
        if (!valid) return void this.deps.log.warn("malformed attachable networks from the manager: ignored");
        return this.onAttachable?.(m.networks);
      }
      case "ack": {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        return p?.resolve();
      }
      case "nack": {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        return p?.reject(new BatonError(m.code, m.message));
      }
      case "logs-open":
        return this.openLogs(m.id, m.taskId, { follow: m.follow, ...(m.tail !== undefined ? { tail: m.tail } : {}) });
      case "logs-cancel": {
        this.logStreams.get(m.id)?.();
        this.logStreams.delete(m.id);
        return;
      }
      case "stats-get":
        return this.answerStats(m.id, Array.isArray(m.taskIds) ? m.taskIds.map(String) : []);
      case "closed":
        return this.removed(m.message);
      case "promote":
        return this.deps.onPromote?.();
    }
  }

  private answerStats(id: number, taskIds: string[]): void {
    const failed = (error: string): TaskStatsReport[] => taskIds.map((taskId) => ({ taskId, error }));
    if (!this.statsServer) return this.send({ type: "stats", id, stats: failed("this node serves no stats") });
    this.statsServer(taskIds).then(
      (stats) => this.send({ type: "stats", id, stats }),
      (err: unknown) => this.send({ type: "stats", id, stats: failed(err instanceof Error ? err.message : String(err)) }),
    );
  }

  private openLogs(id: number, taskId: string, opts: { tail?: number; follow: boolean }): void {
    if (!this.logServer) return this.send({ type: "logs-end", id, error: "this node serves no logs" });
    const stream = this.logServer.open(taskId, opts, (lines) => this.send({ type: "logs", id, lines }));
    this.logStreams.set(id, stream.cancel);
    stream.done.then(
      () => this.logStreams.delete(id) && this.send({ type: "logs-end", id }),
      (err: unknown) => this.logStreams.delete(id) && this.send({ type: "logs-end", id, error: err instanceof Error ? err.message : String(err) }),
    );
  }

  /** ws pings keep the connection honest: no answer for 3 periods + 1 s and it is cut and redialled. */
  private ping(): void {
    this.cancelPing?.();
    const tick = (): void => {
      const ws = this.ws;
      if (!ws || ws.readyState !== ws.OPEN) return;
      if (this.deps.clock.now() - this.lastHeard > this.periodMs * 3 + 1000) {
        this.deps.log.warn({ manager: this.connectedTo }, "manager silent; reconnecting to the next one");
        // Silent, not closed: likely cut off (a partition). Try the next manager first.
        this.managerIndex = (this.managerIndex + 1) % this.managers.length;
        ws.terminate();
        return;
      }
      ws.ping();
      this.cancelPing = this.deps.clock.setTimer(this.periodMs, tick);
    };
    this.cancelPing = this.deps.clock.setTimer(this.periodMs, tick);
  }

  private onClose(ws: WebSocket, code: number): void {
    if (this.ws !== ws) return;
    const hadSession = this.sessionId !== undefined;
    this.sessionId = undefined;
    this.ws = undefined;
    this.cancelPing?.();
    this.failPending(new BatonError("UNAVAILABLE", "session to the manager lost"));
    for (const cancel of this.logStreams.values()) cancel();
    this.logStreams.clear();
    if (this.closed) return;
    if (code === CloseCode.removed) return this.removed("this node was removed from the cluster");
    if (hadSession) this.deps.log.warn({ code }, "session to manager lost; reconnecting (tasks keep running)");
    // Try the next manager, after a delay that grows while nothing answers.
    if (!hadSession) this.managerIndex = (this.managerIndex + 1) % this.managers.length;
    const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** this.attempt++);
    this.cancelRetry = this.deps.clock.setTimer(hadSession ? 0 : delay, () => this.connect());
  }

  private removed(message: string): void {
    if (this.closed) return;
    this.deps.log.error({ message }, "the cluster refused this node; not reconnecting");
    this.registered?.reject(new BatonError("FORBIDDEN", message));
    this.registered = undefined;
    this.close();
    this.deps.onRemoved?.(message);
  }

  /** Reports sent but not acknowledged are rejected (the agent re-sends them); unsent ones wait. */
  private failPending(err: BatonError): void {
    for (const [id, p] of this.pending) {
      if (!p.sent && !this.closed) continue;
      this.pending.delete(id);
      p.reject(err);
    }
  }

  private sendStatus(p: PendingStatus): void {
    p.sent = true;
    this.send({ type: "status", id: p.id, updates: p.updates });
  }

  private send(m: AgentMessage): void {
    const ws = this.ws;
    if (ws && ws.readyState === ws.OPEN) ws.send(JSON.stringify(m));
  }
}

function safeMessage(body: string): string | undefined {
  try {
    const j = JSON.parse(body) as { message?: unknown };
    return typeof j.message === "string" ? j.message : undefined;
  } catch {
    return undefined;
  }
}
