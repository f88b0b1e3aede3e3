import { resolveFileReferences, type ReferenceLookup } from "./file-refs.js";
import { parseDuration, durationProblem } from "../lib/duration.js";
import { validationError, type FieldProblem } from "../lib/errors.js";
import type { DriverName, HealthConfig, Resources, RestartPolicy, ServiceSpec, UpdateConfig } from "../model/objects.js";
import type { ServiceSpecInput } from "./schemas.js";
import { parseConstraint } from "../model/constraints.js";
import { formatBytes, parseBytes } from "./bytes.js";
import { parseCheck, resolveProbes } from "./probes.js";
import { resolvePorts } from "./ports.js";
import { resolveMounts } from "./mounts.js";

/** Defaults applied to every service (docker's where docker has one). */
export const defaults = {
  replicas: 1,
  stopSignal: "SIGTERM",
  stopGracePeriodMs: 10_000,
  taskHistoryLimit: 5,
  health: { intervalMs: 30_000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0 },
  logMaxBytes: 10 * 1024 * 1024,
  maxEnvBytes: 256 * 1024,
  /** docker's floor: below this a process cannot even start under its limit. */
  minLimitMemoryBytes: 6 * 1024 * 1024,
  /** cgroups enforce CPU in 1 ms slices of a 100 ms period: 0.01 CPU is the smallest quota. */
  minLimitCpus: 0.01,
  /** A request arriving while no task is ready waits this long for one (a restart, a slow start). */
  waitForBackendMs: 5_000,
  /** docker's, except the order: start-first (see resolveUpdate). */
  update: { parallelism: 1, delayMs: 0, failureAction: "pause", monitorMs: 5_000, maxFailureRatio: 0, readyTimeoutMs: 60_000 },
} as const;

const SIGNALS = new Set(["SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGKILL", "SIGWINCH"]);

/**
 * Kubernetes' maxSurge / maxUnavailable onto the same updater: a surge means start-first
 * (new tasks beside the old), and surge + unavailable slots are replaced at once; no surge means
 * stop-first with `maxUnavailable` at once. Percentages are of the replicas: surge rounded up,
 * unavailable rounded down, as Kubernetes does.
 */
function surgeMapping(u: NonNullable<ServiceSpecInput["update"]>, replicas: number, path: string[], problems: FieldProblem[]): { order: UpdateConfig["order"]; parallelism: number } | undefined {
  if (u.maxSurge === undefined && u.maxUnavailable === undefined) return undefined;
  if (u.parallelism !== undefined || u.order !== undefined) {
    problems.push({ path: [...path, "maxSurge"], problem: "give either maxSurge/maxUnavailable or parallelism/order, not both" });
    return undefined;
  }
  const count = (v: string | undefined, round: (x: number) => number): number =>
    v === undefined ? 0 : v.endsWith("%") ? round((Number(v.slice(0, -1)) / 100) * replicas) : Number(v);
  const surge = count(u.maxSurge ?? (u.maxUnavailable === undefined ? "25%" : "0"), Math.ceil);
  const unavailable = count(u.maxUnavailable, Math.floor);
  if (surge === 0 && unavailable === 0) {
    problems.push({ path: [...path, "maxUnavailable"], problem: "maxSurge and maxUnavailable cannot both be 0: nothing could be replaced" });
    return undefined;
  }
  return surge > 0 ? { order: "start-first", parallelism: surge + unavailable } : { order: "stop-first", parallelism: unavailable };
}

/** Canary steps (percent, increasing, ending at 100), interval and the highest error rate. */
function resolveCanary(u: NonNullable<ServiceSpecInput["update"]>, path: string[], dur: (path: string[], text: string | undefined, fallback: number) => number, problems: FieldProblem[]): UpdateConfig["canary"] {
  const steps = u.canarySteps ?? [10, 50, 100];
  if (steps.some((s, i) => i > 0 && s <= steps[i - 1]!)) problems.push({ path: [...path, "canarySteps"], problem: `${steps.join(",")}: steps must increase` });
  if (steps.at(-1) !== 100) problems.push({ path: [...path, "canarySteps"], problem: `${steps.join(",")}: the last step must be 100` });
  let maxErrorRate = 0.01;
  if (u.canaryMaxErrorRate !== undefined) {
    const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(u.canaryMaxErrorRate.trim());
    const v = m ? Number(m[1]) / (m[2] ? 100 : 1) : NaN;
    if (!(v >= 0 && v <= 1)) problems.push({ path: [...path, "canaryMaxErrorRate"], problem: `"${u.canaryMaxErrorRate}" is not a rate: use 1% or 0.01` });
    else maxErrorRate = v;
  }
  return { steps, intervalMs: dur([...path, "canaryInterval"], u.canaryInterval, 30_000), maxErrorRate };
}

/**
 * --limit-cpu / --limit-memory: each at least what a cgroup can enforce, and never below the
 * matching reservation (a task could not get what it reserved). 0 means no limit, as in docker,
 * so `service update --limit-memory 0` removes one. Undefined when no limit is left.
 */
function resolveLimits(input: ServiceSpecInput, reserved: Resources, problems: FieldProblem[]): Resources | undefined {
  const limits: Resources = {};
  const cpus = input.limitCpus;
  if (cpus !== undefined && cpus !== 0) {
    if (cpus < defaults.minLimitCpus) problems.push({ path: ["limitCpus"], problem: `${cpus} is below the smallest enforceable limit, ${defaults.minLimitCpus}` });
    else if (reserved.cpus !== undefined && cpus < reserved.cpus) problems.push({ path: ["limitCpus"], problem: `${cpus} is below reserveCpus ${reserved.cpus}` });
    else limits.cpus = cpus;
  }
  const bytes = input.limitMemory === undefined ? undefined : parseBytes(input.limitMemory);
  if (input.limitMemory !== undefined && bytes === undefined) problems.push({ path: ["limitMemory"], problem: `invalid size "${input.limitMemory}" (use e.g. 64m, 1g)` });
  else if (bytes !== undefined && bytes !== 0) {
    if (bytes < defaults.minLimitMemoryBytes) problems.push({ path: ["limitMemory"], problem: `${formatBytes(bytes)} is below the smallest limit, ${formatBytes(defaults.minLimitMemoryBytes)}` });
    else if (reserved.memoryBytes !== undefined && bytes < reserved.memoryBytes) problems.push({ path: ["limitMemory"], problem: `${formatBytes(bytes)} is below reserveMemory ${formatBytes(reserved.memoryBytes)}` });
    else limits.memoryBytes = bytes;
  }
  return limits.cpus !== undefined || limits.memoryBytes !== undefined ? limits : undefined;
}

/**
 * Input (schema-valid) → resolved spec with defaults. Collects every cross-field problem and
 * throws them together, so nothing is half-applied.
 */
export function resolveServiceSpec(input: ServiceSpecInput, lookup?: ReferenceLookup): ServiceSpec {
  const problems: FieldProblem[] = [];
  const dur = (path: string[], text: string | undefined, fallback: number): number => {
    if (text === undefined) return fallback;
    const ms = parseDuration(text);
    if (ms === undefined) {
      problems.push(durationProblem(path, text));
      return fallback;
    }
    return ms;
  };

  const driver = resolveDriver(input, problems);
  if (driver === "process" && !input.command[0]) problems.push({ path: ["command", 0], problem: "the command must not be empty" });
  if (input.mode === "global" && input.replicas !== undefined) {
    problems.push({ path: ["replicas"], problem: "replicas can only be set for replicated services" });
  }

  const env: Record<string, string> = {};
  let envBytes = 0;
  (input.env ?? []).forEach((kv, i) => {
    const eq = kv.indexOf("=");
    const key = eq < 0 ? kv : kv.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      problems.push({ path: ["env", i], problem: `"${key.slice(0, 40)}" is not a valid variable name` });
      return;
    }
    // docker: "-e KEY" without "=" takes KEY from the client's environment; the CLI resolves it.
    env[key] = eq < 0 ? "" : kv.slice(eq + 1);
    envBytes += kv.length;
  });
  if (envBytes > defaults.maxEnvBytes) {
    problems.push({ path: ["env"], problem: `environment is ${envBytes} bytes; the limit is ${defaults.maxEnvBytes}` });
  }

  const rp = input.restartPolicy ?? {};
  const restartPolicy: RestartPolicy = {
    condition: rp.condition ?? "any",
    maxAttempts: rp.maxAttempts ?? 0,
    windowMs: dur(["restartPolicy", "window"], rp.window, 0),
  };
  if (rp.delay !== undefined) restartPolicy.delayMs = dur(["restartPolicy", "delay"], rp.delay, 0);

  let health: HealthConfig | undefined;
  const hc = input.healthcheck;
  if (hc) {
    const check = parseCheck(["healthcheck"], hc, problems);
    if (check) {
      health = {
        check,
        intervalMs: dur(["healthcheck", "interval"], hc.interval, defaults.health.intervalMs),
        timeoutMs: dur(["healthcheck", "timeout"], hc.timeout, defaults.health.timeoutMs),
        retries: hc.retries ?? defaults.health.retries,
        startPeriodMs: dur(["healthcheck", "startPeriod"], hc.startPeriod, defaults.health.startPeriodMs),
      };
      if (health.intervalMs < 10) problems.push({ path: ["healthcheck", "interval"], problem: "must be at least 10ms" });
      if (health.timeoutMs < 1) problems.push({ path: ["healthcheck", "timeout"], problem: "must be at least 1ms" });
    }
  }
  // As docker refuses --no-healthcheck with --health-*: one says "no check", the other names one.
  if (input.noHealthcheck && hc) problems.push({ path: ["noHealthcheck"], problem: "conflicts with healthcheck (the service's own check replaces the image's anyway)" });
  const probes = resolveProbes(input.probes, dur, problems);
  const ports = resolvePorts(input.publish, problems);
  const mounts = resolveMounts(input.mounts, driver, problems);
  const dnsrr = input.endpointMode === "dnsrr";
  // As in Swarm: dnsrr has no service address for the mesh to listen on.
  if (dnsrr && ports.some((p) => p.mode === "ingress")) problems.push({ path: ["endpointMode"], problem: "dnsrr has no service address: publish ports with mode=host, or use vip" });
  const networks = [...new Set(input.networks ?? [])];
  if (networks.length !== (input.networks ?? []).length) problems.push({ path: ["networks"], problem: "a network is listed twice" });
  const waitForBackendMs = dur(["waitForBackend"], input.waitForBackend, defaults.waitForBackendMs);
  // start-first by default, so a one-replica service is updated without a gap; a host-mode port
  // can be held by one task only, so such services go stop-first.
  const defaultOrder: UpdateConfig["order"] = ports.some((p) => p.mode === "host") ? "stop-first" : "start-first";
  const resolveUpdate = (key: "update" | "rollback"): UpdateConfig => {
    const u = input[key] ?? {};
    const surge = surgeMapping(u, input.mode === "global" ? 1 : input.replicas ?? defaults.replicas, [key], problems);
    const order = surge?.order ?? u.order ?? defaultOrder;
    const strategy = u.strategy ?? "rolling";
    const canary = strategy === "canary" ? resolveCanary(u, [key], dur, problems) : undefined;
    if (strategy !== "canary" && (u.canarySteps || u.canaryInterval || u.canaryMaxErrorRate)) problems.push({ path: [key, "strategy"], problem: "canary settings need --update-strategy canary" });
    if (order === "start-first" && ports.some((p) => p.mode === "host")) problems.push({ path: [key, "order"], problem: "start-first cannot be used with a host-mode published port (two tasks cannot hold it)" });
    if (strategy === "canary" && !ports.some((p) => p.protocol === "http")) problems.push({ path: [key, "strategy"], problem: "a canary shares requests through the L7 mesh: publish a port with protocol http" });
    if (strategy !== "rolling" && ports.some((p) => p.mode === "host")) problems.push({ path: [key, "strategy"], problem: "blue-green runs old and new tasks side by side: not with a host-mode published port" });
    if (strategy !== "rolling" && u.order === "stop-first") problems.push({ path: [key, "order"], problem: `${strategy} is start-first by nature` });
    return {
      parallelism: surge?.parallelism ?? u.parallelism ?? defaults.update.parallelism,
      delayMs: dur([key, "delay"], u.delay, defaults.update.delayMs),
      // A rollback that fails has nothing to roll back to: it pauses. A canary is rolled back.
      failureAction: u.failureAction ?? (key === "rollback" ? "pause" : strategy === "canary" ? "rollback" : defaults.update.failureAction),
      monitorMs: dur([key, "monitor"], u.monitor, defaults.update.monitorMs),
      maxFailureRatio: u.maxFailureRatio ?? defaults.update.maxFailureRatio,
      readyTimeoutMs: dur([key, "readyTimeout"], u.readyTimeout, defaults.update.readyTimeoutMs),
      order: strategy !== "rolling" ? "start-first" : order,
      strategy,
      ...(canary ? { canary } : {}),
    };
  };
  const update = resolveUpdate("update");
  const rollback = resolveUpdate("rollback");
  if (rollback.failureAction === "rollback") problems.push({ path: ["rollback", "failureAction"], problem: "a rollback cannot roll back: use pause or continue" });
  const stopSignal = (input.stopSignal ?? defaults.stopSignal).toUpperCase();
  const normalizedSignal = stopSignal.startsWith("SIG") ? stopSignal : `SIG${stopSignal}`;
  if (!SIGNALS.has(normalizedSignal)) problems.push({ path: ["stopSignal"], problem: `unknown signal "${input.stopSignal}"` });

  (input.constraints ?? []).forEach((c, i) => {
    const r = parseConstraint(c);
    if (typeof r === "string") problems.push({ path: ["constraints", i], problem: r });
  });

  let memoryBytes: number | undefined;
  if (input.reserveMemory !== undefined) {
    memoryBytes = parseBytes(input.reserveMemory);
    if (memoryBytes === undefined) problems.push({ path: ["reserveMemory"], problem: `invalid size "${input.reserveMemory}" (use e.g. 512m, 2g)` });
  }
  const limits = resolveLimits(input, { cpus: input.reserveCpus, memoryBytes }, problems);
  let logMaxBytes: number = defaults.logMaxBytes;
  if (input.logMaxSize !== undefined) {
    const b = parseBytes(input.logMaxSize);
    if (b === undefined || b < 4096) problems.push({ path: ["logMaxSize"], problem: `invalid size "${input.logMaxSize}" (at least 4k, e.g. 10m)` });
    else logMaxBytes = b;
  }

  const stopGracePeriodMs = dur(["stopGracePeriod"], input.stopGracePeriod, defaults.stopGracePeriodMs);
  // docker's --placement-pref: only "spread=<node attribute>" exists.
  const spread: string[] = [];
  (input.placementPrefs ?? []).forEach((pref, i) => {
    const m = /^spread=(node\.(?:id|hostname|role|platform\.os|platform\.arch|labels\.[A-Za-z0-9_.-]+))$/.exec(pref.trim());
    if (!m) problems.push({ path: ["placementPrefs", i], problem: `"${pref}" is not spread=node.labels.<name> (or node.hostname, node.role, node.platform.os/arch)` });
    else spread.push(m[1]!);
  });
  // Without a lookup (no store at hand) references are resolved but not bound to ids.
  const secrets = resolveFileReferences("secrets", input.secrets, driver, lookup, problems);
  const configs = resolveFileReferences("configs", input.configs, driver, lookup, problems);
  if (problems.length) throw validationError(problems);
  // Distinct targets in order: the first is the task's $PORT, others $PORT_<target>.
  const targets = [...new Set(ports.map((p) => p.target))];
  const hostPorts = ports.filter((p) => p.mode === "host").map((p) => ({ published: p.published!, target: p.target }));

  return {
    name: input.name,
    labels: input.labels ?? {},
    mode: input.mode === "global" ? { kind: "global" } : { kind: "replicated", replicas: input.replicas ?? defaults.replicas },
    taskHistoryLimit: input.taskHistoryLimit ?? defaults.taskHistoryLimit,
    endpoint: { ports, balance: input.loadBalance ?? "round-robin", waitForBackendMs, ...(dnsrr ? { mode: "dnsrr" as const } : {}) },
    update,
    rollback,
    task: {
      driver,
      ...(driver === "docker" ? { image: withDefaultTag(input.image!) } : {}),
      ...(input.entrypoint ? { entrypoint: input.entrypoint } : {}),
      ...(input.user ? { user: input.user } : {}),
      command: input.command,
      env,
      ...(input.workdir ? { workdir: input.workdir } : {}),
      stopSignal: normalizedSignal,
      stopGracePeriodMs,
      ...(health ? { health } : {}),
      ...(input.noHealthcheck ? { noHealthcheck: true as const } : {}),
      ...(probes ? { probes } : {}),
      ...(targets.length ? { targets } : {}),
      ...(ports.length && ports.every((p) => p.protocol === "udp") ? { udpOnly: true } : {}),
      ...(hostPorts.length ? { hostPorts } : {}),
      restartPolicy,
      placement: {
        constraints: input.constraints ?? [],
        ...(spread.length ? { spread } : {}),
        ...(input.maxReplicasPerNode ? { maxReplicasPerNode: input.maxReplicasPerNode } : {}),
      },
      reservations: {
        ...(input.reserveCpus !== undefined ? { cpus: input.reserveCpus } : {}),
        ...(memoryBytes !== undefined ? { memoryBytes } : {}),
      },
      ...(limits ? { limits } : {}),
      logMaxBytes,
      ...(secrets ? { secrets } : {}),
      ...(configs ? { configs } : {}),
      // Names or ids as given: the API turns them into ids (it reads the store; this does not).
      ...(networks.length ? { networks } : {}),
      ...(mounts.length ? { mounts } : {}),
    },
  };
}

/**
 * docker's reference grammar, loosely: [registry[:port]/]path[:tag][@digest], lower-case path
 * components. Enough to refuse what the engine would refuse, with the field named.
 */
const IMAGE_PATTERN = /^(?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

/**
 * The driver: `driver` when given, else docker when there is an image, else process (the
 * CLI's guess from a bare argument is made on the client: docs/docker.md). The image, entrypoint
 * and user belong to docker only.
 */
function resolveDriver(input: ServiceSpecInput, problems: FieldProblem[]): DriverName {
  const driver: DriverName = input.driver ?? (input.image !== undefined ? "docker" : "process");
  if (driver === "docker") {
    if (input.image === undefined) problems.push({ path: ["image"], problem: "the docker driver needs an image" });
    else if (!IMAGE_PATTERN.test(input.image)) problems.push({ path: ["image"], problem: `"${input.image.slice(0, 80)}" is not an image reference (e.g. nginx:alpine, registry:5000/team/app:1.2)` });
  } else {
    for (const f of ["image", "entrypoint", "user", "noHealthcheck"] as const) if (input[f] !== undefined) problems.push({ path: [f], problem: "only the docker driver takes this field (use driver docker)" });
  }
  return driver;
}

/** `name` means `name:latest`, as for docker; a digest pins it as it is. */
export function withDefaultTag(image: string): string {
  if (image.includes("@")) return image;
  const lastPart = image.slice(image.lastIndexOf("/") + 1);
  return lastPart.includes(":") ? image : `${image}:latest`;
}
