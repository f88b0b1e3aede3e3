import type { Node, Service, Task } from "../model/objects.js";
import { isCurrentSpec } from "../model/service-status.js";
import type { ReadTx, StoreEvent } from "../store/store.js";
import type { EndpointsChange, ServiceEndpoints } from "./protocol.js";

/** A task takes traffic when it runs, is wanted, and says it is ready (probes, port, not draining). */
export const isBackend = (t: Task): boolean => t.desiredState === "running" && t.status.state === "running" && t.status.ready === true && !!t.nodeId;

/** The node address other nodes reach tasks at; `baton up`'s single node is loopback. */
const hostOf = (n: Node | undefined): string => n?.status.address ?? "127.0.0.1";

/**
 * During a blue-green update one color serves: the old tasks until the switch, the new ones
 * after it — never a mix.
 */
function servesNow(s: Service): (t: Task) => boolean {
  const u = s.updateStatus;
  // A canary not yet promoted: before its first step, or paused, only the old tasks serve.
  if (u?.canary && (u.state === "updating" || u.state === "paused") && s.spec.update.canary) {
    const promoted = u.canary.step >= s.spec.update.canary.steps.length;
    if (promoted) return (t) => isCurrentSpec(t, s);
    if (u.canary.step < 0 || u.state === "paused") return (t) => !isCurrentSpec(t, s);
    return () => true;
  }
  if (!u?.blueGreen || u.state === "completed" || u.state === "rollback_completed") return () => true;
  // Rolling a blue-green update back: the color that is current again serves.
  if (u.state === "rollback_started" || u.state === "rollback_paused") return (t) => isCurrentSpec(t, s);
  const switched = u.switchedAt !== undefined;
  return (t) => isCurrentSpec(t, s) === switched;
}

/**
 * Canary weights: the new tasks together get the step's share of requests whatever the counts —
 * each new task weighs share × old count, each old one (100 − share) × new count.
 */
function canaryWeights(s: Service, tasks: Task[]): (t: Task) => { weight?: number } {
  const u = s.updateStatus;
  const steps = s.spec.update.canary?.steps;
  if (!u?.canary || u.state !== "updating" || !steps || u.canary.step < 0 || u.canary.step >= steps.length) return () => ({});
  const share = steps[u.canary.step]!;
  const fresh = tasks.filter((t) => isCurrentSpec(t, s)).length;
  const old = tasks.length - fresh;
  return (t) => ({ weight: isCurrentSpec(t, s) ? share * Math.max(old, 1) : (100 - share) * Math.max(fresh, 1) });
}

export function serviceEndpoints(tx: ReadTx, s: Service): ServiceEndpoints {
  const nodes = new Map<string, Node | undefined>();
  const serves = servesNow(s);
  const candidates = tx.tasksOfService(s.id).filter((t) => isBackend(t) && serves(t));
  const weightOf = canaryWeights(s, candidates);
  const backends = candidates.map((t) => {
    if (!nodes.has(t.nodeId!)) nodes.set(t.nodeId!, tx.get("nodes", t.nodeId!));
    const ports = t.status.ports ?? (t.status.port !== undefined && s.spec.endpoint.ports[0] ? { [String(s.spec.endpoint.ports[0].target)]: t.status.port } : {});
    return { taskId: t.id, nodeId: t.nodeId!, host: hostOf(nodes.get(t.nodeId!)), ports, ...weightOf(t) };
  });
  backends.sort((a, b) => (a.taskId < b.taskId ? -1 : 1));
  const { endpoint } = s.spec;
  const watchTraffic = s.updateStatus?.state === "updating" && s.spec.update.strategy === "canary";
  const networks = s.spec.task.networks;
  return { serviceId: s.id, name: s.spec.name, ...(s.vip && endpoint.mode !== "dnsrr" ? { vip: s.vip } : {}), ...(networks?.length ? { networks } : {}), ports: endpoint.ports, balance: endpoint.balance, waitForBackendMs: endpoint.waitForBackendMs, backends, ...(watchTraffic ? { watchTraffic } : {}) };
}

/**
 * Keeps the endpoints of every service and turns store events into changes for subscribers,
 * sending a service again only when what the mesh sees of it changed (a health detail of a
 * task is not a change of its pools).
 */
export class EndpointsFeed {
  private readonly last = new Map<string, string>();
  private readonly subscribers = new Set<(c: EndpointsChange) => void>();

  constructor(private readonly view: <T>(fn: (tx: ReadTx) => T) => T) {}

  subscribe(onChange: (c: EndpointsChange) => void): () => void {
    const services = this.view((tx) => tx.list("services").map((s) => serviceEndpoints(tx, s)));
    for (const e of services) this.last.set(e.serviceId, JSON.stringify(e));
    this.subscribers.add(onChange);
    onChange({ type: "full", services });
    return () => this.subscribers.delete(onChange);
  }

  onEvents(events: StoreEvent[]): void {
    if (this.subscribers.size === 0) return;
    const touched = new Set<string>();
    const removed = new Set<string>();
    let nodesChanged = false;
    for (const e of events) {
      if (e.kind === "services") (e.op === "delete" ? removed : touched).add(e.object.id);
      else if (e.kind === "tasks") touched.add((e.object as Task).serviceId);
      else if (e.kind === "nodes") nodesChanged = true;
    }
    const upserts = this.view((tx) => {
      // A node's address change moves every backend on it.
      const ids = nodesChanged ? tx.list("services").map((s) => s.id) : [...touched];
      const out: ServiceEndpoints[] = [];
      for (const id of ids) {
        if (removed.has(id)) continue;
        const s = tx.get("services", id);
        if (!s) continue;
        const e = serviceEndpoints(tx, s);
        const json = JSON.stringify(e);
        if (this.last.get(id) === json) continue;
        this.last.set(id, json);
        out.push(e);
      }
      return out;
    });
    for (const id of removed) this.last.delete(id);
    if (upserts.length === 0 && removed.size === 0) return;
    const change: EndpointsChange = { type: "update", upserts, removes: [...removed] };
    for (const fn of this.subscribers) fn(change);
  }
}
