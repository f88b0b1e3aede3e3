import type { DesiredState, TaskState } from "./task-state.js";

/** Fields every stored object carries. `version` is the store revision of its last write. */
export interface Meta {
  id: string;
  version: number;
  createdAt: number;
  updatedAt: number;
}

export type RestartCondition = "none" | "on-failure" | "any";

export interface RestartPolicy {
  condition: RestartCondition;
  /** Fixed delay before a restart; undefined means the default exponential backoff. */
  delayMs?: number;
  /** 0 = unlimited. */
  maxAttempts: number;
  /** Window over which attempts are counted; 0 = since the slot was created. */
  windowMs: number;
}

export type HealthCheck =
  | { kind: "exec"; command: string[] }
  | { kind: "http"; path: string; port?: number }
  | { kind: "tcp"; port?: number };

export interface HealthConfig {
  check: HealthCheck;
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

/**
 * A Kubernetes-style probe: liveness restarts the task, readiness takes it out of (and back
 * into) the mesh's pools, startup holds the other two back until it passes once.
 */
export interface ProbeConfig {
  check: HealthCheck;
  initialDelayMs: number;
  periodMs: number;
  timeoutMs: number;
  /** Consecutive successes to pass (readiness; 1 for liveness and startup). */
  successThreshold: number;
  /** Consecutive failures to fail. */
  failureThreshold: number;
}

export interface Probes {
  liveness?: ProbeConfig;
  readiness?: ProbeConfig;
  startup?: ProbeConfig;
}

export type PortProtocol = "tcp" | "udp" | "http";

/**
 * A service port. `target` is the port the service answers on behind its virtual address
 * (`web:80`); `published` (when set) is the port every node listens on (ingress) or the task's own
 * port on its node (host). For the process driver the task listens on $PORT for the first target
 * and on $PORT_<target> for any other.
 */
export interface PublishedPort {
  published?: number;
  target: number;
  protocol: PortProtocol;
  mode: "ingress" | "host";
}

/** How the mesh reaches a service. */
export interface EndpointSpec {
  ports: PublishedPort[];
  /**
   * dnsrr: no service address; the service's name resolves to its tasks (containers on a shared
   * network, through the engine's DNS). Absent = vip, so specs stored before it compare equal.
   */
  mode?: "dnsrr";
  balance: "round-robin" | "least-connections";
  /** How long a new connection or request waits for a ready task before it fails. */
  waitForBackendMs: number;
}

export interface Resources {
  /** CPUs as a fraction of cores (1.5 = one and a half cores). */
  cpus?: number;
  memoryBytes?: number;
}

/**
 * A filesystem mount of a task (docs/volumes.md). volume: a named volume (`source` is its name),
 * kept per node; bind: a host path (`source`, absolute); tmpfs: memory, gone with the task
 * (docker only). For the process driver `target` names the variable that carries the path.
 */
export interface TaskMount {
  type: "volume" | "bind" | "tmpfs";
  source?: string;
  target: string;
  readOnly?: boolean;
  /** tmpfs: its size cap in bytes. */
  tmpfsSizeBytes?: number;
}

/** Where a task runs: a host process, or a container on the node's Docker Engine (docs/docker.md). */
export type DriverName = "process" | "docker";

/** What a task runs; copied from the service onto each task so the agent needs nothing else. */
export interface TaskSpec {
  driver: DriverName;
  /** docker: the image (the command, when given, replaces its CMD). */
  image?: string;
  /** docker: replaces the image's ENTRYPOINT. */
  entrypoint?: string[];
  /** docker: user[:group] inside the container. */
  user?: string;
  /** process: the executable and its arguments. docker: the container's command (empty: the image's CMD). */
  command: string[];
  env: Record<string, string>;
  workdir?: string;
  stopSignal: string;
  stopGracePeriodMs: number;
  /** The service's own health check; absent: a docker task uses its image's HEALTHCHECK, if any. */
  health?: HealthConfig;
  /** docker: the image's HEALTHCHECK is not run (docker's --no-healthcheck). Absent unless set. */
  noHealthcheck?: true;
  probes?: Probes;
  /** Service port targets the task listens on, in order: the first is $PORT, others $PORT_<target>. */
  targets?: number[];
  /** Every service port is UDP: there is no TCP port to wait for before the task is ready. */
  udpOnly?: boolean;
  /** Published ports in host mode: the task binds `published` on its node for `target` (one task per node each). */
  hostPorts?: { published: number; target: number }[];
  restartPolicy: RestartPolicy;
  placement: {
    constraints: string[];
    /** Spread over the values of these node attributes, in order (nested), as Swarm's --placement-pref. */
    spread?: string[];
    /** At most this many tasks of the service on one node (0 or absent: no limit). */
    maxReplicasPerNode?: number;
  };
  reservations: Resources;
  /**
   * What the task may use at most, enforced by its driver (a cgroup for the process driver).
   * Absent when no limit is set, so specs stored before limits existed compare equal to new ones.
   */
  limits?: Resources;
  /** Per-task log file cap before rotation. */
  logMaxBytes: number;
  /** Ids of the networks the task is attached to; absent = the implicit default network. */
  networks?: string[];
  /** Volumes, bind mounts and tmpfs mounts; absent when there are none. */
  mounts?: TaskMount[];
  /** Secrets delivered to the task as files (docs/secrets.md). Absent when none, so older specs compare equal. */
  secrets?: FileReference[];
  /** Configs delivered to the task as files. Absent when none. */
  configs?: FileReference[];
}

/**
 * A secret or config a task gets as a file: which object (by id, so replacing a secret of the
 * same name is a spec change that rolls the tasks), where, and with which owner and mode.
 */
export interface FileReference {
  id: string;
  name: string;
  /**
   * The file's name: relative to the task's secrets (configs) directory, or an absolute path in
   * the container (docker only). Default: the name (secrets: /run/secrets/<name>; configs: /<name>).
   */
  target: string;
  /** Permission bits. @default 0o400 (secrets), 0o444 (configs) */
  mode: number;
  uid?: string;
  gid?: string;
}

/** How a spec change rolls over the tasks (docker's --update-* and --rollback-* flags). */
export interface UpdateConfig {
  /** Slots replaced at once; 0 = all at once. */
  parallelism: number;
  /** Wait after a slot is updated before the next one starts. */
  delayMs: number;
  failureAction: "pause" | "continue" | "rollback";
  /** How long a new task must stay up (and ready) to count as updated; failures in it count. */
  monitorMs: number;
  /** Failed new tasks per updated slot tolerated before the failure action (0..1). */
  maxFailureRatio: number;
  /**
   * A new task not ready this long after it started counts as failed (Kubernetes'
   * progressDeadlineSeconds, per task; a startup probe's allowance is added).
   */
  readyTimeoutMs: number;
  /** start-first: the new task runs beside the old until ready; stop-first: the old goes first. */
  order: "stop-first" | "start-first";
  /**
   * rolling: slot by slot. blue-green: every new task is started beside the old ones, traffic
   * switches at once when all are ready, then the old ones are drained and stopped.
   */
  strategy: "rolling" | "blue-green" | "canary";
  /** Canary: traffic shares (percent) of the new version, step by step; watched for `intervalMs` each. */
  canary?: { steps: number[]; intervalMs: number; maxErrorRate: number };
}

/** Requests the mesh sent a task, and how many failed (5xx answers, transport errors). */
export interface TrafficCounters {
  requests: number;
  errors: number;
}

export type UpdateState = "updating" | "paused" | "completed" | "rollback_started" | "rollback_paused" | "rollback_completed";

export interface UpdateStatus {
  state: UpdateState;
  message: string;
  startedAt: number;
  completedAt?: number;
  /** Slot keys whose new task has stayed up for the monitor period. */
  updated: string[];
  /** New tasks that failed (or never became ready) during this update. */
  failures: number;
  /** No new slot starts before this time (the update delay after the last one). */
  nextStartAt: number;
  /** Why this update (or rollback) started: "manual rollback", or the failure that rolled it back. */
  reason?: string;
  /** `--force`: every task is replaced, even those whose spec did not change. */
  force?: boolean;
  /** A blue-green update (or the rollback of one, or of a canary): one color of tasks serves at a time. */
  blueGreen?: boolean;
  /** Blue-green: when traffic switched to the new tasks (unset: the old ones still serve). */
  switchedAt?: number;
  /** Canary: the step in progress (-1 while the new tasks come up), since when, and the new tasks' counters then. */
  canary?: { step: number; since: number; base: TrafficCounters; errorRate?: number };
}

export interface ServiceSpec {
  name: string;
  labels: Record<string, string>;
  mode: { kind: "replicated"; replicas: number } | { kind: "global" };
  task: TaskSpec;
  endpoint: EndpointSpec;
  update: UpdateConfig;
  rollback: UpdateConfig;
  /** Terminal tasks kept per slot for `service ps`. */
  taskHistoryLimit: number;
}

export interface Service extends Meta {
  spec: ServiceSpec;
  /** Stable virtual address in 127.0.0.0/8, the same on every node (set when it has service ports). */
  vip?: string;
  /** The spec as the user sent it (API input form): `service update` applies its changes to it. */
  specInput?: unknown;
  /** The spec before the last change: what `service rollback` returns to. */
  previousSpec?: ServiceSpec;
  previousSpecInput?: unknown;
  /** Progress of the last spec change over the tasks. */
  updateStatus?: UpdateStatus;
  /** Increments on every spec change that needs new tasks; scale does not change it. */
  specVersion: number;
}

export interface TaskStatus {
  state: TaskState;
  /** When this state was entered. */
  timestamp: number;
  message: string;
  err?: string;
  exitCode?: number;
  signal?: string;
  pid?: number;
  /** docker: the task's container id (full; `service ps` shows 12 characters as docker does). */
  containerId?: string;
  port?: number;
  /** Every service port target the task listens on → its port on the node. */
  ports?: Record<string, number>;
  health?: "starting" | "healthy" | "unhealthy";
  /** In the mesh's pools: probes (or the port) say it takes traffic, and it is not draining. */
  ready?: boolean;
  /** What the mesh has sent this task so far (cumulative): canary updates watch the error rate. */
  traffic?: TrafficCounters;
  /** When the task first reached running. */
  startedAt?: number;
  /**
   * Sequence number of the agent report this status came from: reports of one task are applied
   * only in increasing order, so a late report never overwrites a newer one.
   */
  seq?: number;
}

/** Counters carried from a slot's task to its replacement. */
export interface RestartState {
  /** Restarts of this slot so far. */
  attempts: number;
  /** Times of restarts inside the policy window (bounded). */
  recent: number[];
  /** Consecutive short runs, drives the backoff; reset by a run of 10 s or more. */
  streak: number;
}

export interface Task extends Meta {
  serviceId: string;
  serviceName: string;
  specVersion: number;
  /** Replicated: 1..N. Global: 0 (the node is the slot). */
  slot: number;
  nodeId?: string;
  desiredState: DesiredState;
  status: TaskStatus;
  spec: TaskSpec;
  restart: RestartState;
  /** Set when the orchestrator decided this slot will not be restarted, with why. */
  restartBlocked?: string;
  /** Set when the updater gave up on this new task (it never became ready), with why. */
  updateFailure?: string;
  /**
   * Set by `service rebalance` on a task that should leave its node: the orchestrator starts a
   * replacement elsewhere and stops this one once the replacement is up. (A drained node needs no
   * mark: its availability says so.) Kept in the store so a restarted manager carries on.
   */
  moveRequest?: { reason: "rebalance"; requestedAt: number };
  /**
   * This task replaces `taskId` of the same slot, moving it off `nodeId` start-first: the
   * scheduler places it on another node, the old task runs until this one is up.
   */
  moveOf?: TaskMove;
}

/** Why a task moves off its node. */
export type MoveReason = "drain" | "rebalance";

export interface TaskMove {
  taskId: string;
  nodeId: string;
  reason: MoveReason;
}

/** Which resource limits a node's agent can enforce on its tasks, and through which cgroup version. */
export interface NodeLimitSupport {
  memory: boolean;
  cpu: boolean;
  cgroup: "v1" | "v2" | "none";
}

export type NodeAvailability = "active" | "pause" | "drain";
export type NodeState = "ready" | "down" | "unknown";

export interface Node extends Meta {
  hostname: string;
  role: "manager" | "worker";
  /**
   * `baton node promote|demote`: the role asked for while the node has not taken it yet (its
   * certificate, and so `role`, change once the node itself became a manager or a worker).
   */
  desiredRole?: "manager" | "worker";
  availability: NodeAvailability;
  labels: Record<string, string>;
  status: { state: NodeState; message: string; heartbeatAt: number; address?: string };
  resources: { cpus: number; memoryBytes: number };
  drivers: string[];
  /** Absent on nodes whose agent predates limits: they enforce none. */
  limits?: NodeLimitSupport;
  platform: { os: string; arch: string };
  agentVersion: string;
}

/**
 * The cluster's own record (one, id "cluster"), written at `baton init`: the CA certificate,
 * the join tokens (salted hashes to check them, and the plain token sealed with a key only the
 * CA key holder derives, for `join-token` to print again), and the revoked nodes and serials.
 */
export interface Cluster extends Meta {
  caCertPem: string;
  joinTokens: Record<"worker" | "manager", { salt: string; hash: string; createdAt: number; sealed: string }>;
  revocations: { nodeIds: string[]; serials: string[] };
  /** The secrets data key, sealed with a key derived from the CA key (src/secrets/data-key.ts). */
  secretsKey?: string;
  /** Every manager's TLS listener (host:port), HA: what agents and `join-token` point at. */
  managers?: string[];
}

export const CLUSTER_ID = "cluster";

/**
 * A named blob a service's tasks get as a file. Its data is stored sealed (AES-256-GCM under the
 * cluster's data key, src/secrets/) and never leaves the manager except in the assignment of a
 * node that runs a task using it; the API and events show the metadata only (`publicSecret`).
 */
export interface Secret extends Meta {
  name: string;
  labels: Record<string, string>;
  /** The data, sealed: iv.tag.ciphertext (base64url). */
  sealed: string;
  /** Bytes of the plain data. */
  size: number;
}

/** Like a secret, but not confidential: stored as it is and shown by `config inspect`. */
export interface Config extends Meta {
  name: string;
  labels: Record<string, string>;
  /** The data, base64. */
  data: string;
}

/**
 * A network services attach to (docs/networks.md): services discover only services that share a
 * network with them. On a node it is a docker bridge network for containers; between nodes
 * (`overlay`) traffic goes through the mesh.
 */
export interface Network extends Meta {
  name: string;
  driver: "overlay" | "bridge";
  /** No published ports for services only on internal networks; containers get no outbound NAT. */
  internal: boolean;
  attachable: boolean;
  labels: Record<string, string>;
}

/** A named volume: a directory per node (process driver) or a docker volume (containers). */
export interface Volume extends Meta {
  name: string;
  driver: "local";
  labels: Record<string, string>;
}

/** The network every service without `networks` is on (it has no stored object). */
export const DEFAULT_NETWORK = "default";

export interface Collections {
  nodes: Node;
  services: Service;
  tasks: Task;
  clusters: Cluster;
  secrets: Secret;
  configs: Config;
  networks: Network;
  volumes: Volume;
}
export type Kind = keyof Collections;
export const kinds: Kind[] = ["nodes", "services", "tasks", "clusters", "secrets", "configs", "networks", "volumes"];

/** A task's display name, like docker's: web.1 (replicated) or web.<node> (global). */
export function taskName(t: Pick<Task, "serviceName" | "slot" | "nodeId">): string {
  return t.slot > 0 ? `${t.serviceName}.${t.slot}` : `${t.serviceName}.${(t.nodeId ?? "").slice(0, 12)}`;
}
