import { newId } from "../../src/lib/ids.js";
import type { Node, Service, Task, TaskSpec } from "../../src/model/objects.js";
import type { TaskState } from "../../src/model/task-state.js";
import { resolveServiceSpec } from "../../src/input/resolve.js";
import type { ServiceSpecInput } from "../../src/input/schemas.js";

export function aService(input: Partial<ServiceSpecInput> = {}, meta: Partial<Service> = {}): Service {
  const spec = resolveServiceSpec({ name: "web", command: ["node", "server.js"], ...input });
  return { id: newId(), version: 1, createdAt: 0, updatedAt: 0, spec, specVersion: 1, ...meta };
}

export function aNode(over: Partial<Node> & { labels?: Record<string, string> } = {}): Node {
  return {
    id: newId(),
    version: 1,
    createdAt: 0,
    updatedAt: 0,
    hostname: over.hostname ?? `node-${Math.random().toString(36).slice(2, 6)}`,
    role: "manager",
    availability: "active",
    labels: {},
    status: { state: "ready", message: "", heartbeatAt: 0 },
    resources: { cpus: 2, memoryBytes: 4 * 1024 ** 3 },
    drivers: ["process"],
    platform: { os: "linux", arch: "x64" },
    agentVersion: "test",
    ...over,
  };
}

export function aTask(svc: Service, over: Partial<Task> & { state?: TaskState; at?: number; startedAt?: number } = {}): Task {
  const { state, at, startedAt, ...rest } = over;
  const spec: TaskSpec = svc.spec.task;
  return {
    id: newId(),
    version: 1,
    createdAt: at ?? 0,
    updatedAt: at ?? 0,
    serviceId: svc.id,
    serviceName: svc.spec.name,
    specVersion: svc.specVersion,
    slot: 1,
    desiredState: "running",
    status: { state: state ?? "running", timestamp: at ?? 0, message: "", ...(startedAt !== undefined ? { startedAt } : {}) },
    spec,
    restart: { attempts: 0, recent: [], streak: 0 },
    ...rest,
  };
}
