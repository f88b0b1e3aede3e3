import type { Clock } from "../lib/clock.js";
import type { Logger } from "../lib/log.js";
import { pickNow, withActivator, type Acquire } from "./activator.js";
import { listenTcp } from "./l4/tcp.js";
import { listenUdp } from "./l4/udp.js";
import { listenHttp } from "./l7/proxy.js";
import type { ListenerDeps, ListenerHandle } from "./listener.js";
import { ServicePool, type BackendState } from "./pool.js";
import type { Backend, DrainResult, ListenerSpec, ServicePolicy, ServiceStats } from "./types.js";

export interface MeshDeps {
  clock: Clock;
  log: Logger;
  /** Called when a connection/request starts waiting because its service has no ready backend (scale-from-zero hook). */
  onWaiting?: (serviceId: string) => void;
}

const sameSpec = (a: ListenerSpec, b: ListenerSpec): boolean => a.serviceId === b.serviceId && a.host === b.host && a.port === b.port && a.protocol === b.protocol;

/**
 * The routing mesh data plane of one node. Driven by calls (it never reads the store): the
 * agent tells it which listeners to hold, which backends each service has, and which backend to
 * drain before a task is stopped.
 */
export class Mesh {
  private readonly pools = new Map<string, ServicePool>();
  private readonly listeners = new Map<string, ListenerHandle>();
  private readonly log: Logger;
  private readonly listenerDeps: ListenerDeps;
  /** setListeners calls run one after another: each diffs against the previous one's result. */
  private listenerChain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly deps: MeshDeps) {
    this.log = deps.log.child({ component: "mesh" });
    const acquire: Acquire = withActivator(pickNow, { clock: deps.clock, onWaiting: deps.onWaiting });
    this.listenerDeps = { clock: deps.clock, log: this.log, pool: (id) => this.pool(id), acquire };
  }

  /**
   * Makes the set of listeners equal to `specs` (by key): opens new ones, closes removed ones
   * (their connections in flight carry on), re-opens one whose address, protocol or service
   * changed. Bind errors come back per key (the message names host:port) instead of throwing.
   */
  setListeners(specs: readonly ListenerSpec[]): Promise<{ key: string; error: string }[]> {
    const run = this.listenerChain.then(() => this.applyListeners(specs));
    this.listenerChain = run.catch(() => {});
    return run;
  }

  private async applyListeners(specs: readonly ListenerSpec[]): Promise<{ key: string; error: string }[]> {
    if (this.closed) return specs.map((s) => ({ key: s.key, error: "mesh closed" }));
    const wanted = new Map(specs.map((s) => [s.key, s]));
    const closing: Promise<void>[] = [];
    for (const [key, l] of this.listeners) {
      const w = wanted.get(key);
      if (w && sameSpec(w, l.spec)) continue;
      this.listeners.delete(key);
      closing.push(l.close());
      this.log.info({ key, serviceId: l.spec.serviceId, port: l.spec.port }, "listener closed");
    }
    await Promise.all(closing);
    const errors: { key: string; error: string }[] = [];
    await Promise.all(
      [...wanted.values()]
        .filter((s) => !this.listeners.has(s.key))
        .map(async (s) => {
          try {
            this.listeners.set(s.key, await this.open(s));
            this.log.info({ key: s.key, serviceId: s.serviceId, host: s.host, port: s.port, protocol: s.protocol }, "listener open");
          } catch (err) {
            const error = (err as Error).message;
            errors.push({ key: s.key, error });
            this.log.warn({ key: s.key, serviceId: s.serviceId, host: s.host, port: s.port, error }, "listener bind failed");
          }
        }),
    );
    return errors;
  }

  private open(s: ListenerSpec): Promise<ListenerHandle> {
    if (s.protocol === "tcp") return listenTcp(s, this.listenerDeps);
    if (s.protocol === "udp") return listenUdp(s, this.listenerDeps);
    return listenHttp(s, this.listenerDeps);
  }

  /** The port a listener is bound to (useful when its spec asked for port 0); undefined when not open. */
  port(key: string): number | undefined {
    return this.listeners.get(key)?.port;
  }

  setPolicy(serviceId: string, p: Partial<ServicePolicy>): void {
    const pool = this.pool(serviceId);
    pool.policy = { ...pool.policy, ...p };
    pool.changed();
  }

  /**
   * Replaces the ready backends of a service. A backend missing from `backends` leaves the
   * pool: no new connections or requests; what is in flight finishes (with no deadline: call
   * drain() for one). A backend that is re-added after leaving comes back as a fresh entry.
   */
  setBackends(serviceId: string, backends: readonly Backend[]): void {
    this.pool(serviceId).setBackends(backends);
    this.log.debug({ serviceId, backends: backends.map((b) => b.id) }, "backends set");
  }

  /**
   * Removes one backend from its pool and resolves when it carries nothing in flight, or when
   * deadlineMs passes: then what is left is closed and counted. Idle keep-alive connections to
   * it close at once. Resolves { drained: true, closedConnections: 0 } for an unknown id
   * (nothing of it can be in flight here).
   */
  drain(backendId: string, deadlineMs: number): Promise<DrainResult> {
    let b: BackendState | undefined;
    for (const pool of this.pools.values()) b ??= pool.remove(backendId);
    if (!b) return Promise.resolve({ drained: true, closedConnections: 0 });
    const backend = b;
    this.log.debug({ taskId: backendId, active: backend.active, deadlineMs }, "drain started");
    return new Promise((resolve) => {
      const cancel = this.deps.clock.setTimer(deadlineMs, () => {
        const closedConnections = backend.cut();
        this.log.info({ taskId: backendId, closedConnections }, "drain deadline passed, connections closed");
        resolve({ drained: false, closedConnections });
      });
      void backend.leave().then(() => {
        cancel();
        resolve({ drained: true, closedConnections: 0 });
      });
    });
  }

  stats(): ServiceStats[] {
    return [...this.pools.values()].map((p) => ({ serviceId: p.serviceId, backends: p.all().map((b) => b.stats()) }));
  }

  /** Closes every listener and cuts all traffic in flight. Idempotent. */
  async close(): Promise<void> {
    await this.setListeners([]);
    this.closed = true;
    for (const pool of this.pools.values()) for (const b of pool.all()) b.cut();
    this.pools.clear();
  }

  private pool(serviceId: string): ServicePool {
    let p = this.pools.get(serviceId);
    if (!p) this.pools.set(serviceId, (p = new ServicePool(serviceId, this.deps.clock)));
    return p;
  }
}
