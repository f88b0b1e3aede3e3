import type { FileReference, HealthCheck, ProbeConfig, ServiceSpec, UpdateConfig } from "../model/objects.js";
import type { FileReferenceInput, ServiceSpecInput } from "./schemas.js";

const ms = (n: number): string => `${n}ms`;

/** A check back in its input form: { cmd } | { http } | { tcp }. */
function checkInput(c: HealthCheck): { cmd?: string; http?: string; tcp?: number } {
  switch (c.kind) {
    case "exec":
      // resolve wraps a cmd as ["/bin/sh", "-c", cmd].
      return { cmd: c.command[0] === "/bin/sh" && c.command[1] === "-c" ? c.command.slice(2).join(" ") : c.command.join(" ") };
    case "http":
      return { http: `${c.port !== undefined ? `:${c.port}` : ""}${c.path}` };
    case "tcp":
      return { tcp: c.port ?? 0 };
  }
}

function probeInput(p: ProbeConfig): Record<string, unknown> {
  return { ...checkInput(p.check), initialDelay: ms(p.initialDelayMs), period: ms(p.periodMs), timeout: ms(p.timeoutMs), successThreshold: p.successThreshold, failureThreshold: p.failureThreshold };
}

function updateInput(u: UpdateConfig): NonNullable<ServiceSpecInput["update"]> {
  return {
    parallelism: u.parallelism,
    delay: ms(u.delayMs),
    failureAction: u.failureAction,
    monitor: ms(u.monitorMs),
    maxFailureRatio: u.maxFailureRatio,
    order: u.order,
    readyTimeout: ms(u.readyTimeoutMs),
    strategy: u.strategy,
    ...(u.canary ? { canarySteps: u.canary.steps, canaryInterval: ms(u.canary.intervalMs), canaryMaxErrorRate: String(u.canary.maxErrorRate) } : {}),
  };
}

/**
 * A resolved spec back in the API's input form: what `service update` edits for services stored
 * before the input form was kept (created by an older baton). Resolving it gives the same spec.
 */
export function specToInput(spec: ServiceSpec): ServiceSpecInput {
  const t = spec.task;
  const rp = t.restartPolicy;
  return {
    name: spec.name,
    labels: spec.labels,
    mode: spec.mode.kind,
    ...(spec.mode.kind === "replicated" ? { replicas: spec.mode.replicas } : {}),
    driver: t.driver,
    ...(t.image ? { image: t.image } : {}),
    ...(t.entrypoint ? { entrypoint: t.entrypoint } : {}),
    ...(t.user ? { user: t.user } : {}),
    command: t.command,
    env: Object.entries(t.env).map(([k, v]) => `${k}=${v}`),
    ...(t.workdir ? { workdir: t.workdir } : {}),
    restartPolicy: { condition: rp.condition, maxAttempts: rp.maxAttempts, window: ms(rp.windowMs), ...(rp.delayMs !== undefined ? { delay: ms(rp.delayMs) } : {}) },
    ...(t.health ? { healthcheck: { ...checkInput(t.health.check), interval: ms(t.health.intervalMs), timeout: ms(t.health.timeoutMs), retries: t.health.retries, startPeriod: ms(t.health.startPeriodMs) } } : {}),
    ...(t.probes ? { probes: Object.fromEntries(Object.entries(t.probes).map(([k, p]) => [k, probeInput(p)])) } : {}),
    stopSignal: t.stopSignal,
    stopGracePeriod: ms(t.stopGracePeriodMs),
    constraints: t.placement.constraints,
    ...(t.placement.spread?.length ? { placementPrefs: t.placement.spread.map((a) => `spread=${a}`) } : {}),
    ...(t.placement.maxReplicasPerNode ? { maxReplicasPerNode: t.placement.maxReplicasPerNode } : {}),
    ...(t.reservations.cpus !== undefined ? { reserveCpus: t.reservations.cpus } : {}),
    ...(t.reservations.memoryBytes !== undefined ? { reserveMemory: String(t.reservations.memoryBytes) } : {}),
    ...(t.limits?.cpus !== undefined ? { limitCpus: t.limits.cpus } : {}),
    ...(t.limits?.memoryBytes !== undefined ? { limitMemory: String(t.limits.memoryBytes) } : {}),
    taskHistoryLimit: spec.taskHistoryLimit,
    logMaxSize: String(t.logMaxBytes),
    publish: spec.endpoint.ports.map((p) => ({ ...(p.published !== undefined ? { published: p.published } : {}), target: p.target, protocol: p.protocol, mode: p.mode })),
    loadBalance: spec.endpoint.balance,
    waitForBackend: ms(spec.endpoint.waitForBackendMs),
    update: updateInput(spec.update),
    rollback: updateInput(spec.rollback),
    ...(t.secrets ? { secrets: t.secrets.map(refInput) } : {}),
    ...(t.configs ? { configs: t.configs.map(refInput) } : {}),
    ...(t.networks?.length ? { networks: t.networks } : {}),
    ...(t.mounts?.length ? { mounts: t.mounts.map((m) => ({ type: m.type, ...(m.source !== undefined ? { source: m.source } : {}), target: m.target, ...(m.readOnly ? { readOnly: true } : {}), ...(m.tmpfsSizeBytes !== undefined ? { tmpfsSize: String(m.tmpfsSizeBytes) } : {}) })) } : {}),
    ...(spec.endpoint.mode === "dnsrr" ? { endpointMode: "dnsrr" } : {}),
  } as ServiceSpecInput;
}

function refInput(r: FileReference): FileReferenceInput {
  return { source: r.name, target: r.target, mode: r.mode, ...(r.uid !== undefined ? { uid: r.uid } : {}), ...(r.gid !== undefined ? { gid: r.gid } : {}) };
}
