import type { Dispatcher } from "undici";
import type { Clock } from "../lib/clock.js";
import { pickBackend, type Candidate } from "./balancer.js";
import { LatencyReservoir } from "./latency.js";
import { DEFAULT_POLICY, type Backend, type BackendStats, type ServicePolicy } from "./types.js";

/** Something holding traffic to a backend that a drain deadline must cut (an L4 pair, a UDP session). */
export interface Cuttable {
  cut(): void;
}

/**
 * A backend's life in the pool:
 *   serving  → picked for new traffic
 *   draining → left the pool (drain() or absent from setBackends); in-flight traffic finishes
 *   gone     → nothing in flight any more (or cut at a deadline); its upstream pool is closed
 */
export type BackendPhase = "serving" | "draining" | "gone";

/** passive health: how long a backend that refused a connection is skipped. */
const EJECT_MS = 2000;

export class BackendState implements Candidate {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  weight: number;
  phase: BackendPhase = "serving";
  active = 0;
  currentWeight = 0;
  ejectedUntil = 0;
  requests = 0;
  errors = 0;
  /** L7 answers with a 5xx status (the canary's error rate counts them with `errors`). */
  serverErrors = 0;
  readonly latency = new LatencyReservoir();
  /** Open L4 connections and UDP sessions, so that a drain deadline can close them. */
  readonly holders = new Set<Cuttable>();
  /** The L7 keep-alive pool, created on the first HTTP request. */
  upstream?: Dispatcher & { close(): Promise<void>; destroy(): Promise<void> };
  private idleWaiters: (() => void)[] = [];

  constructor(b: Backend) {
    this.id = b.id;
    this.host = b.host;
    this.port = b.port;
    this.weight = b.weight ?? 1;
  }

  /** One more connection / request in flight. Pair every acquire() with one release(). */
  acquire(): void {
    this.active++;
    this.requests++;
  }

  release(): void {
    this.active--;
    if (this.active === 0 && this.phase === "draining") this.finish();
  }

  /** After a connect failure: new picks skip the backend for a while (passive health). */
  eject(now: number): void {
    this.ejectedUntil = now + EJECT_MS;
  }

  /** Leaves the pool; resolves when nothing is in flight any more. Idempotent. */
  leave(): Promise<void> {
    if (this.phase === "serving") {
      this.phase = "draining";
      // undici's close(): no new requests, running ones finish, idle keep-alive sockets close now.
      void this.upstream?.close().catch(() => {});
      if (this.active === 0) this.finish();
    }
    if (this.phase === "gone") return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Closes everything still in flight (drain deadline, mesh close); returns how many were cut. */
  cut(): number {
    const n = this.active;
    for (const h of [...this.holders]) h.cut();
    void this.upstream?.destroy().catch(() => {});
    this.finish();
    return n;
  }

  stats(): BackendStats {
    const [p50Ms, p99Ms] = this.latency.percentiles(50, 99);
    return { id: this.id, requests: this.requests, errors: this.errors, serverErrors: this.serverErrors, active: this.active, ...(p50Ms === undefined ? {} : { p50Ms, p99Ms }) };
  }

  private finish(): void {
    this.phase = "gone";
    const ws = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of ws) w();
  }
}

/** The backends of one service, its policy, and who is waiting for a first backend. */
export class ServicePool {
  policy: ServicePolicy = { ...DEFAULT_POLICY };
  /** Serving backends, in the order setBackends gave them. */
  private serving: BackendState[] = [];
  /** Backends that left and still carry traffic. */
  private readonly leaving = new Set<BackendState>();
  private readonly changeListeners = new Set<() => void>();

  constructor(
    readonly serviceId: string,
    private readonly clock: Clock,
  ) {}

  pick(exclude?: ReadonlySet<BackendState>): BackendState | undefined {
    return pickBackend(this.policy.balance, this.serving, this.clock.now(), exclude);
  }

  get size(): number {
    return this.serving.length;
  }

  /** Replaces the serving set; backends absent from `list` start draining (no deadline). */
  setBackends(list: readonly Backend[]): void {
    const byId = new Map(this.serving.map((b) => [b.id, b]));
    const next: BackendState[] = [];
    for (const b of list) {
      const cur = byId.get(b.id);
      if (cur && cur.host === b.host && cur.port === b.port) {
        cur.weight = b.weight ?? 1;
        next.push(cur);
        byId.delete(b.id);
      } else next.push(new BackendState(b));
    }
    for (const gone of byId.values()) this.startLeaving(gone);
    this.serving = next;
    this.changed();
  }

  /** Takes the backend out of the serving set (if there) and returns it, serving or already leaving. */
  remove(backendId: string): BackendState | undefined {
    const i = this.serving.findIndex((b) => b.id === backendId);
    if (i >= 0) {
      const [b] = this.serving.splice(i, 1);
      this.startLeaving(b!);
      this.changed();
      return b;
    }
    for (const b of this.leaving) if (b.id === backendId) return b;
    return undefined;
  }

  /** Calls fn after every change of the serving set or policy; returns the unsubscribe. */
  onChange(fn: () => void): () => void {
    this.changeListeners.add(fn);
    return () => void this.changeListeners.delete(fn);
  }

  changed(): void {
    for (const fn of [...this.changeListeners]) fn();
  }

  all(): BackendState[] {
    return [...this.serving, ...this.leaving];
  }

  private startLeaving(b: BackendState): void {
    this.leaving.add(b);
    void b.leave().then(() => this.leaving.delete(b));
  }
}
