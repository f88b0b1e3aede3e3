import type { Logger } from "../lib/log.js";
import type { AgentSession, EndpointsChange, ServiceEndpoints } from "../dispatcher/protocol.js";
import { CONTAINER_RANGE, containerAddressOf, discoveryVariables } from "../model/service-address.js";
import { DEFAULT_NETWORK } from "../model/objects.js";
import type { TrafficCounters } from "../model/objects.js";
import type { Mesh } from "./mesh.js";
import type { ListenerSpec, MeshProtocol } from "./types.js";

/** The pool of one service port: a service with several targets has one pool per target. */
const poolKey = (serviceId: string, target: number): string => `${serviceId}:${target}`;

/**
 * Turns the dispatcher's endpoints stream into the mesh's configuration on this node: for every
 * service port, a listener on the service's virtual address (`web:80`) and, when published in
 * ingress mode, one on every node's published port; each fed the service's ready tasks. Also
 * answers service names (DNS) and the discovery variables of starting tasks.
 */
export class MeshSync {
  private readonly services = new Map<string, ServiceEndpoints>();
  private unsubscribe: () => void = () => undefined;
  private lastErrors = new Map<string, string>();
  /** Cumulative traffic per task, kept here: a backend that leaves and rejoins a pool restarts its own counters. */
  private readonly totals = new Map<string, TrafficCounters>();
  private readonly lastSeen = new Map<string, TrafficCounters>();
  /** The mesh also listens on every VIP's twin in the container range (see enableContainerRange). */
  private containerRange: boolean;

  constructor(
    private readonly deps: {
      session: AgentSession;
      mesh: Mesh;
      log: Logger;
      /** Start with the container range on (tests); `baton up` calls enableContainerRange once it is routed. */
      containerRange?: boolean;
      /** The networks of the task (a container on this node) at an address; undefined: not a task's. */
      networksOfAddress?: (address: string) => readonly string[] | undefined;
    },
  ) {
    this.containerRange = deps.containerRange === true;
  }

  /** The container range is routed to this host now: listen on every VIP's twin too. */
  enableContainerRange(): void {
    if (this.containerRange) return;
    this.containerRange = true;
    void this.deps.mesh.setListeners(this.listeners()).then((errors) => this.reportListenerErrors(errors));
  }

  start(): void {
    this.unsubscribe = this.deps.session.endpoints((c) => this.apply(c));
  }

  stop(): void {
    this.unsubscribe();
  }

  /** Takes a task out of every pool and resolves once its in-flight work is done (or the deadline passed). */
  async drain(taskId: string, deadlineMs: number): Promise<void> {
    const r = await this.deps.mesh.drain(taskId, deadlineMs);
    if (!r.drained) this.deps.log.warn({ taskId, closed: r.closedConnections }, "drain deadline passed; remaining connections closed");
  }

  /**
   * <NAME>_SERVICE_HOST / _PORT of every service with a virtual address that shares a network
   * with the starting task (`networks`: its network ids, none = the default network). A
   * container gets the addresses it can reach (the container range).
   */
  discoveryEnv(scope: { networks?: readonly string[]; container?: boolean } = {}): Record<string, string> {
    const visible = [...this.services.values()].filter(sharesNetwork(scope.networks));
    return discoveryVariables(
      visible.map((s) => ({ name: s.name, ...(s.vip ? { vip: s.vip } : {}), targets: [...new Set(s.ports.map((p) => p.target))] })),
      scope.container === true && this.containerRange,
    );
  }

  /**
   * What the mesh on this node has sent each task so far (requests, and failures: 5xx or
   * transport), for the services whose canary is being watched (others are not reported: no
   * store write per task per second outside a canary). Counters of tasks no longer in any pool
   * are dropped, so this stays as large as the pools.
   */
  trafficByTask(): Map<string, TrafficCounters> {
    const watched = new Set([...this.services.values()].filter((s) => s.watchTraffic).map((s) => s.serviceId));
    const seen = new Set<string>();
    for (const pool of this.deps.mesh.stats()) {
      if (!watched.has(pool.serviceId.slice(0, pool.serviceId.lastIndexOf(":")))) continue;
      for (const b of pool.backends) {
        seen.add(b.id);
        const key = `${pool.serviceId}|${b.id}`;
        const now = { requests: b.requests, errors: b.errors + b.serverErrors };
        const prev = this.lastSeen.get(key) ?? { requests: 0, errors: 0 };
        // Counters that went down belong to a new backend instance: count them from zero.
        const base = now.requests < prev.requests || now.errors < prev.errors ? { requests: 0, errors: 0 } : prev;
        const t = this.totals.get(b.id) ?? { requests: 0, errors: 0 };
        this.totals.set(b.id, { requests: t.requests + now.requests - base.requests, errors: t.errors + now.errors - base.errors });
        this.lastSeen.set(key, now);
      }
    }
    for (const id of this.totals.keys()) if (!seen.has(id)) this.totals.delete(id);
    for (const key of this.lastSeen.keys()) if (!seen.has(key.slice(key.indexOf("|") + 1))) this.lastSeen.delete(key);
    return this.totals;
  }

  /**
   * Service name → its virtual address (the DNS responder's answers), as the asker at `from`
   * sees it. A container on this node (known by its address) finds only services that share a
   * network with it, at their container-range address; any other container address is on the
   * default network. A host process (a loopback address) shares the host's network, where every
   * VIP is reachable, so it finds every service.
   */
  resolve(name: string, from = "127.0.0.1"): string[] | undefined {
    const bare = name.toLowerCase().replace(/\.$/, "");
    const fromHost = from.startsWith("127.") || from === "::1" || from.startsWith("::ffff:127.");
    const visible = fromHost ? () => true : sharesNetwork(this.deps.networksOfAddress?.(from));
    for (const s of this.services.values()) {
      if (!s.vip || s.name.toLowerCase() !== bare || !visible(s)) continue;
      return [fromHost ? s.vip : containerAddressOf(s.vip)];
    }
    return undefined;
  }

  /**
   * Whether a peer may use a service's container-range address: a container only when it shares
   * a network with the service (as it could only resolve it then); the host itself always.
   */
  admits(serviceId: string, from: string): boolean {
    const ip = from.replace(/^::ffff:/, "");
    if (ip.startsWith("127.") || ip.startsWith(CONTAINER_RANGE.prefix) || ip === "::1") return true;
    const s = this.services.get(serviceId);
    return s !== undefined && sharesNetwork(this.deps.networksOfAddress?.(ip))(s);
  }

  private apply(change: EndpointsChange): void {
    if (change.type === "full") {
      for (const id of this.services.keys()) this.clearPools(this.services.get(id)!);
      this.services.clear();
      for (const s of change.services) this.services.set(s.serviceId, s);
    } else {
      for (const id of change.removes) {
        const gone = this.services.get(id);
        if (gone) this.clearPools(gone);
        this.services.delete(id);
      }
      for (const s of change.upserts) {
        const prev = this.services.get(s.serviceId);
        if (prev) this.clearPools(prev, s);
        this.services.set(s.serviceId, s);
      }
    }
    for (const s of change.type === "full" ? change.services : change.upserts) this.feedPools(s);
    void this.deps.mesh.setListeners(this.listeners()).then((errors) => this.reportListenerErrors(errors));
  }

  private feedPools(s: ServiceEndpoints): void {
    for (const target of new Set(s.ports.map((p) => p.target))) {
      const key = poolKey(s.serviceId, target);
      this.deps.mesh.setPolicy(key, { balance: s.balance, waitForBackendMs: s.waitForBackendMs });
      const backends = s.backends.flatMap((b) => {
        const port = b.ports[String(target)];
        return port === undefined ? [] : [{ id: b.taskId, host: b.host, port, ...(b.weight !== undefined ? { weight: b.weight } : {}) }];
      });
      this.deps.mesh.setBackends(key, backends);
    }
  }

  /** Empties the pools of targets a service no longer has (or all of them when it is gone). */
  private clearPools(prev: ServiceEndpoints, next?: ServiceEndpoints): void {
    const kept = new Set(next?.ports.map((p) => p.target) ?? []);
    for (const p of prev.ports) if (!kept.has(p.target)) this.deps.mesh.setBackends(poolKey(prev.serviceId, p.target), []);
  }

  private listeners(): ListenerSpec[] {
    const out: ListenerSpec[] = [];
    for (const s of this.services.values()) {
      for (const p of s.ports) {
        const protocol: MeshProtocol = p.protocol;
        const serviceId = poolKey(s.serviceId, p.target);
        if (s.vip) out.push({ key: `vip ${s.vip}:${p.target}/${protocol}`, serviceId, host: s.vip, port: p.target, protocol });
        if (s.vip && this.containerRange) {
          const twin = containerAddressOf(s.vip);
          out.push({ key: `vip ${twin}:${p.target}/${protocol}`, serviceId, host: twin, port: p.target, protocol, admit: (from) => this.admits(s.serviceId, from) });
        }
        if (p.published !== undefined && p.mode === "ingress") out.push({ key: `published ${p.published}/${protocol === "udp" ? "udp" : "tcp"}`, serviceId, host: "0.0.0.0", port: p.published, protocol });
      }
    }
    // Two ports of one service on the same VIP port (e.g. 80/tcp and 80/http) would collide: first wins.
    const seen = new Set<string>();
    return out.filter((l) => (seen.has(l.key) ? false : (seen.add(l.key), true)));
  }

  private reportListenerErrors(errors: { key: string; error: string }[]): void {
    const now = new Map(errors.map((e) => [e.key, e.error]));
    for (const [key, error] of now) if (this.lastErrors.get(key) !== error) this.deps.log.error({ listener: key, error }, "mesh cannot listen");
    this.lastErrors = now;
  }
}

/** Whether a service shares a network with a task on `networks` (none: the default network). */
function sharesNetwork(networks: readonly string[] | undefined): (s: ServiceEndpoints) => boolean {
  const mine = new Set(networks?.length ? networks : [DEFAULT_NETWORK]);
  return (s) => (s.networks?.length ? s.networks : [DEFAULT_NETWORK]).some((n) => mine.has(n));
}
