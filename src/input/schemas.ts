import { Type, type Static } from "@sinclair/typebox";

/** A string enum as JSON Schema `enum`, so a bad value reads "must be one of: …". */
const StringEnum = <T extends string[]>(values: [...T]) => Type.Unsafe<T[number]>({ type: "string", enum: values });

/** Shared by API validation and the OpenAPI document. Every object rejects unknown fields. */
const strict = { additionalProperties: false } as const;

export const NAME_PATTERN = "^[a-zA-Z0-9][a-zA-Z0-9_.-]*$";
export const DURATION_PATTERN = "^(0|(\\d+(\\.\\d+)?(ns|us|µs|ms|s|m|h))+)$";
const Duration = Type.String({ description: "Go-style duration: 500ms, 10s, 1m30s", maxLength: 32, pattern: DURATION_PATTERN });
const Labels = Type.Record(Type.String({ minLength: 1, maxLength: 256 }), Type.String({ maxLength: 4096 }), { maxProperties: 256 });

export const RestartPolicyInput = Type.Object(
  {
    condition: Type.Optional(StringEnum(["none", "on-failure", "any"])),
    delay: Type.Optional(Duration),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    window: Type.Optional(Duration),
  },
  strict,
);

export const HealthcheckInput = Type.Object(
  {
    cmd: Type.Optional(Type.String({ minLength: 1, maxLength: 8192, description: "run with /bin/sh -c; exit 0 = healthy" })),
    http: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: "path (GET on the task's PORT) or :port/path" })),
    tcp: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: "port to connect to; 0 = the task's PORT" })),
    interval: Type.Optional(Duration),
    timeout: Type.Optional(Duration),
    retries: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    startPeriod: Type.Optional(Duration),
  },
  strict,
);

export const ProbeInput = Type.Object(
  {
    http: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: "GET path on the task's PORT (or :port/path); 2xx/3xx passes" })),
    tcp: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: "TCP connect; 0 = the task's PORT" })),
    cmd: Type.Optional(Type.String({ minLength: 1, maxLength: 8192, description: "run with /bin/sh -c; exit 0 passes" })),
    initialDelay: Type.Optional(Duration),
    period: Type.Optional(Duration),
    timeout: Type.Optional(Duration),
    successThreshold: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    failureThreshold: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  },
  strict,
);

export const PortInput = Type.Union([
  Type.String({ maxLength: 64, description: "PUBLISHED:TARGET[/tcp|udp|http], or the long form published=P,target=T,protocol=…,mode=ingress|host" }),
  Type.Object(
    {
      published: Type.Optional(Type.Integer({ description: "port on every node (ingress) or the task's node (host)" })),
      target: Type.Optional(Type.Integer({ description: "port behind the service address; default: published" })),
      protocol: Type.Optional(StringEnum(["tcp", "udp", "http"])),
      mode: Type.Optional(StringEnum(["ingress", "host"])),
    },
    strict,
  ),
]);

export const MountInput = Type.Object(
  {
    type: StringEnum(["volume", "bind", "tmpfs"]),
    source: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: "volume: its name (created when missing); bind: an absolute host path; tmpfs: none" })),
    target: Type.String({ minLength: 1, maxLength: 4096, description: "absolute path in the container (process driver: names the variable that carries the path)" }),
    readOnly: Type.Optional(Type.Boolean()),
    tmpfsSize: Type.Optional(Type.String({ maxLength: 32, description: "tmpfs: size cap, e.g. 64m" })),
  },
  strict,
);
export type MountInput = Static<typeof MountInput>;

export const UpdateConfigInput = Type.Object(
  {
    parallelism: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000, description: "slots at once; 0 = all" })),
    delay: Type.Optional(Duration),
    failureAction: Type.Optional(StringEnum(["pause", "continue", "rollback"])),
    monitor: Type.Optional(Duration),
    maxFailureRatio: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    order: Type.Optional(StringEnum(["stop-first", "start-first"])),
    readyTimeout: Type.Optional(Duration),
    strategy: Type.Optional(StringEnum(["rolling", "blue-green", "canary"])),
    maxSurge: Type.Optional(Type.String({ maxLength: 8, pattern: "^\\d+%?$", description: "Kubernetes' maxSurge: tasks (or % of replicas, rounded up) above the replica count during an update" })),
    maxUnavailable: Type.Optional(Type.String({ maxLength: 8, pattern: "^\\d+%?$", description: "Kubernetes' maxUnavailable: tasks (or % of replicas, rounded down) below the replica count" })),
    canarySteps: Type.Optional(Type.Array(Type.Integer({ minimum: 1, maximum: 100 }), { minItems: 1, maxItems: 20, description: "traffic shares of the new version in percent, e.g. [10, 50, 100]" })),
    canaryInterval: Type.Optional(Duration),
    canaryMaxErrorRate: Type.Optional(Type.String({ maxLength: 16, description: "highest error rate of the new version, e.g. 1% or 0.01" })),
  },
  strict,
);

/** A secret or config a service's tasks get as a file (docker's --secret/--config). */
export const FileReferenceInput = Type.Object(
  {
    source: Type.String({ minLength: 1, maxLength: 64, description: "the secret's (config's) name" }),
    target: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: "file name in the task's directory, or an absolute path in a container; default: the name" })),
    mode: Type.Optional(Type.Integer({ minimum: 0, maximum: 0o777, description: "permission bits, e.g. 292 (0o444); default 0o400 (secrets), 0o444 (configs)" })),
    uid: Type.Optional(Type.String({ maxLength: 16, pattern: "^\\d+$" })),
    gid: Type.Optional(Type.String({ maxLength: 16, pattern: "^\\d+$" })),
  },
  strict,
);
export type FileReferenceInput = Static<typeof FileReferenceInput>;

/** Docker's limit on a secret's (config's) data. */
export const MAX_SECRET_BYTES = 500 * 1024;

/** `POST /v1/secrets` and `POST /v1/configs`. */
export const FileObjectInput = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64, pattern: NAME_PATTERN }),
    // base64 of at most 500 KiB (4/3 of it, padded); the decoded size is checked again.
    data: Type.String({ maxLength: Math.ceil(MAX_SECRET_BYTES / 3) * 4, pattern: "^[A-Za-z0-9+/]*={0,2}$", description: "the contents, base64 (at most 500 KiB decoded)" }),
    labels: Type.Optional(Labels),
  },
  strict,
);
export type FileObjectInput = Static<typeof FileObjectInput>;

export const ServiceSpecInput = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 63, pattern: NAME_PATTERN }),
    labels: Type.Optional(Labels),
    mode: Type.Optional(StringEnum(["replicated", "global"])),
    replicas: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000 })),
    driver: Type.Optional(StringEnum(["process", "docker"])),
    image: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: "docker: image reference, e.g. nginx:alpine; implies driver docker" })),
    entrypoint: Type.Optional(Type.Array(Type.String({ maxLength: 32_768 }), { maxItems: 4096, description: "docker: replaces the image's ENTRYPOINT" })),
    user: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: "docker: user[:group] inside the container" })),
    command: Type.Array(Type.String({ maxLength: 32_768 }), { maxItems: 4096, description: "process: executable and arguments (at least one); docker: the container's command (empty: the image's CMD)" }),
    env: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 32_768 }), { maxItems: 1000 })),
    workdir: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    restartPolicy: Type.Optional(RestartPolicyInput),
    healthcheck: Type.Optional(HealthcheckInput),
    noHealthcheck: Type.Optional(Type.Boolean({ description: "docker: do not run the image's own HEALTHCHECK (docker's --no-healthcheck)" })),
    probes: Type.Optional(Type.Object({ liveness: Type.Optional(ProbeInput), readiness: Type.Optional(ProbeInput), startup: Type.Optional(ProbeInput) }, strict)),
    publish: Type.Optional(Type.Array(PortInput, { maxItems: 64 })),
    loadBalance: Type.Optional(StringEnum(["round-robin", "least-connections"])),
    waitForBackend: Type.Optional(Duration),
    update: Type.Optional(UpdateConfigInput),
    rollback: Type.Optional(UpdateConfigInput),
    stopSignal: Type.Optional(Type.String({ maxLength: 16 })),
    stopGracePeriod: Type.Optional(Duration),
    constraints: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 512 }), { maxItems: 64 })),
    placementPrefs: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256, description: "spread=node.labels.zone" }), { maxItems: 8 })),
    maxReplicasPerNode: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000 })),
    reserveCpus: Type.Optional(Type.Number({ minimum: 0, maximum: 4096 })),
    reserveMemory: Type.Optional(Type.String({ maxLength: 32, description: "bytes with an optional unit: 512m, 2g" })),
    limitCpus: Type.Optional(Type.Number({ minimum: 0, maximum: 4096, description: "CPUs a task may use at most (0.5 = half a core); 0 = no limit" })),
    limitMemory: Type.Optional(Type.String({ maxLength: 32, description: "memory a task may use at most before it is OOM-killed: 64m, 1g; 0 = no limit" })),
    taskHistoryLimit: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
    logMaxSize: Type.Optional(Type.String({ maxLength: 32, description: "per-task log size before rotation: 10m" })),
    secrets: Type.Optional(Type.Array(FileReferenceInput, { maxItems: 100, description: "secrets the tasks get as files (docs/secrets.md)" })),
    configs: Type.Optional(Type.Array(FileReferenceInput, { maxItems: 100, description: "configs the tasks get as files" })),
    networks: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 32, description: "network names or ids; none = the default network" })),
    mounts: Type.Optional(Type.Array(MountInput, { maxItems: 64 })),
    endpointMode: Type.Optional(StringEnum(["vip", "dnsrr"])),
  },
  strict,
);
export type ServiceSpecInput = Static<typeof ServiceSpecInput>;

export const UpdateServiceInput = Type.Object(
  {
    version: Type.Integer({ minimum: 0, description: "the service version this change was made against (optimistic concurrency)" }),
    spec: ServiceSpecInput,
    force: Type.Optional(Type.Boolean({ description: "replace every task even if the spec is unchanged" })),
    dryRun: Type.Optional(Type.Boolean({ description: "answer the field diff and the plan; change nothing" })),
  },
  strict,
);
export type UpdateServiceInput = Static<typeof UpdateServiceInput>;

export const ScaleInput = Type.Object({ replicas: Type.Integer({ minimum: 0, maximum: 10_000 }) }, strict);
export type ScaleInput = Static<typeof ScaleInput>;

export const NodeUpdateInput = Type.Object(
  {
    availability: Type.Optional(StringEnum(["active", "pause", "drain"])),
    labels: Type.Optional(Labels),
    /** After the change, rebalance every replicated service (`baton node update --rebalance`). */
    rebalance: Type.Optional(Type.Boolean()),
  },
  strict,
);
export type NodeUpdateInput = Static<typeof NodeUpdateInput>;

export const NetworkCreateInput = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 63, pattern: NAME_PATTERN }),
    driver: Type.Optional(StringEnum(["overlay", "bridge"])),
    internal: Type.Optional(Type.Boolean({ description: "no published ports for services only on it; containers get no outbound NAT" })),
    attachable: Type.Optional(Type.Boolean()),
    labels: Type.Optional(Labels),
  },
  strict,
);
export type NetworkCreateInput = Static<typeof NetworkCreateInput>;

export const VolumeCreateInput = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 63, pattern: NAME_PATTERN }),
    driver: Type.Optional(StringEnum(["local"])),
    labels: Type.Optional(Labels),
  },
  strict,
);
export type VolumeCreateInput = Static<typeof VolumeCreateInput>;

export const ErrorBody = Type.Object({
  code: Type.String(),
  message: Type.String(),
  fields: Type.Array(Type.Object({ path: Type.Array(Type.Union([Type.String(), Type.Number()])), problem: Type.String() })),
});
