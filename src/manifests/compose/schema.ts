import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { DURATION_PATTERN } from "../../input/schemas.js";

/**
 * The part of the Compose specification Baton runs, written for Baton (the structure follows
 * compose-spec's schema: a service's `deploy`, top-level `networks`, `volumes`, `secrets`,
 * `configs`). Unknown keys are errors, `x-` keys are allowed everywhere a mapping is; keys compose
 * has and Baton does not run are removed before this schema (unsupported.ts) with a warning.
 */

const StringEnum = <T extends string[]>(values: [...T]) => Type.Unsafe<T[number]>({ type: "string", enum: values });
const obj = <T extends Record<string, TSchema>>(props: T) => Type.Object(props, { additionalProperties: false, patternProperties: { "^x-": {} } });
const opt = Type.Optional;

const Duration = Type.String({ pattern: DURATION_PATTERN, maxLength: 32 });
const Str = Type.String({ maxLength: 32_768 });
const Scalar = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]);
/** environment, labels: `["KEY=VALUE", "KEY"]` or `{KEY: VALUE}`. */
const ListOrDict = Type.Union([Type.Array(Str, { maxItems: 1000 }), Type.Record(Type.String(), Scalar, { maxProperties: 1000 })], { description: "a list of KEY=VALUE or a mapping of KEY: VALUE" });
const StringOrList = Type.Union([Str, Type.Array(Str, { maxItems: 4096 })], { description: "a string or a list of strings" });
const Count = Type.Integer({ minimum: 0, maximum: 10_000 });
/** cpus: "0.5" (docker writes it as a string) or 0.5. */
const Cpus = Type.Union([Type.String({ maxLength: 32 }), Type.Number()], { description: "a number of CPUs such as '0.5'" });
/** memory: "256M", "1g", or bytes. */
const Memory = Type.Union([Type.String({ maxLength: 32 }), Type.Integer({ minimum: 0 })], { description: "a size such as 256M" });
const External = Type.Union([Type.Boolean(), obj({ name: opt(Type.String({ minLength: 1, maxLength: 255 })) })], { description: "true, false or {name: …}" });
const Labels = ListOrDict;

const UpdateConfig = obj({
  parallelism: opt(Count),
  delay: opt(Duration),
  failure_action: opt(StringEnum(["continue", "rollback", "pause"])),
  monitor: opt(Duration),
  max_failure_ratio: opt(Type.Number({ minimum: 0, maximum: 1 })),
  order: opt(StringEnum(["start-first", "stop-first"])),
});

const Resources = obj({ cpus: opt(Cpus), memory: opt(Memory) });

const Deploy = obj({
  mode: opt(StringEnum(["replicated", "global"])),
  replicas: opt(Count),
  labels: opt(Labels),
  update_config: opt(UpdateConfig),
  rollback_config: opt(UpdateConfig),
  restart_policy: opt(obj({ condition: opt(StringEnum(["none", "on-failure", "any"])), delay: opt(Duration), max_attempts: opt(Count), window: opt(Duration) })),
  placement: opt(obj({ constraints: opt(Type.Array(Type.String({ minLength: 1, maxLength: 512 }), { maxItems: 64 })), preferences: opt(Type.Array(obj({ spread: Type.String({ minLength: 1, maxLength: 256 }) }), { maxItems: 8 })), max_replicas_per_node: opt(Count) })),
  resources: opt(obj({ limits: opt(Resources), reservations: opt(Resources) })),
  endpoint_mode: opt(StringEnum(["vip", "dnsrr"])),
});

const Port = Type.Union(
  [
    Type.String({ maxLength: 64 }),
    Type.Integer({ minimum: 1, maximum: 65535 }),
    obj({
      target: Type.Integer({ minimum: 1, maximum: 65535 }),
      published: opt(Type.Union([Type.Integer({ minimum: 1, maximum: 65535 }), Type.String({ pattern: "^\\d{1,5}$" })], { description: "a port number" })),
      protocol: opt(StringEnum(["tcp", "udp", "http"])),
      mode: opt(StringEnum(["ingress", "host"])),
      name: opt(Type.String({ maxLength: 64 })),
    }),
  ],
  { description: 'a port: "8080:80", "80", "8080:80/udp" or {target, published, protocol, mode}' },
);

const ObjectRef = Type.Union(
  [
    Type.String({ minLength: 1, maxLength: 255 }),
    obj({ source: Type.String({ minLength: 1, maxLength: 255 }), target: opt(Type.String({ minLength: 1, maxLength: 4096 })), uid: opt(Type.String({ maxLength: 32 })), gid: opt(Type.String({ maxLength: 32 })), mode: opt(Type.Integer({ minimum: 0, maximum: 0o777 })) }),
  ],
  { description: "a name or {source, target, uid, gid, mode}" },
);

const Mount = Type.Union(
  [
    Type.String({ minLength: 1, maxLength: 4096 }),
    obj({
      type: StringEnum(["volume", "bind", "tmpfs"]),
      source: opt(Type.String({ minLength: 1, maxLength: 4096 })),
      target: Type.String({ minLength: 1, maxLength: 4096 }),
      read_only: opt(Type.Boolean()),
      tmpfs: opt(obj({ size: opt(Memory) })),
    }),
  ],
  { description: 'a mount: "volume:/path[:ro]", "./dir:/path" or {type, source, target, read_only}' },
);

const Healthcheck = obj({
  test: opt(StringOrList),
  interval: opt(Duration),
  timeout: opt(Duration),
  retries: opt(Type.Integer({ minimum: 0, maximum: 1000 })),
  start_period: opt(Duration),
  disable: opt(Type.Boolean()),
});

export const ComposeService = obj({
  image: opt(Type.String({ minLength: 1, maxLength: 512 })),
  command: opt(StringOrList),
  entrypoint: opt(StringOrList),
  environment: opt(ListOrDict),
  env_file: opt(Type.Union([Str, Type.Array(Type.Union([Str, obj({ path: Str, required: opt(Type.Boolean()) })]), { maxItems: 64 })], { description: "a file or a list of files" })),
  labels: opt(Labels),
  deploy: opt(Deploy),
  ports: opt(Type.Array(Port, { maxItems: 64 })),
  networks: opt(Type.Union([Type.Array(Type.String({ minLength: 1, maxLength: 255 }), { maxItems: 64 }), Type.Record(Type.String(), Type.Union([Type.Null(), obj({})]), { maxProperties: 64 })], { description: "a list of network names or a mapping" })),
  volumes: opt(Type.Array(Mount, { maxItems: 64 })),
  tmpfs: opt(StringOrList),
  secrets: opt(Type.Array(ObjectRef, { maxItems: 256 })),
  configs: opt(Type.Array(ObjectRef, { maxItems: 256 })),
  healthcheck: opt(Healthcheck),
  stop_grace_period: opt(Duration),
  stop_signal: opt(Type.String({ minLength: 1, maxLength: 16 })),
  depends_on: opt(Type.Union([Type.Array(Type.String({ minLength: 1, maxLength: 255 })), Type.Record(Type.String(), obj({ condition: opt(StringEnum(["service_started", "service_healthy", "service_completed_successfully"])), required: opt(Type.Boolean()), restart: opt(Type.Boolean()) }))], { description: "a list of service names or a mapping" })),
  user: opt(Type.String({ minLength: 1, maxLength: 256 })),
  working_dir: opt(Type.String({ minLength: 1, maxLength: 4096 })),
  "x-baton": opt(obj({ driver: opt(StringEnum(["process", "docker"])) })),
});

const Network = Type.Union([
  Type.Null(),
  obj({ driver: opt(StringEnum(["overlay", "bridge"])), internal: opt(Type.Boolean()), attachable: opt(Type.Boolean()), external: opt(External), name: opt(Type.String({ minLength: 1, maxLength: 255 })), labels: opt(Labels) }),
], { description: "empty or a mapping {driver, internal, attachable, external, name, labels}" });

const Volume = Type.Union([Type.Null(), obj({ driver: opt(StringEnum(["local"])), external: opt(External), name: opt(Type.String({ minLength: 1, maxLength: 255 })), labels: opt(Labels) })], { description: "empty or a mapping {driver, external, name, labels}" });

const FileObject = obj({ file: opt(Type.String({ minLength: 1, maxLength: 4096 })), environment: opt(Type.String({ minLength: 1, maxLength: 255 })), content: opt(Str), external: opt(External), name: opt(Type.String({ minLength: 1, maxLength: 255 })), labels: opt(Labels) });

const NAME_KEY = "^[a-zA-Z0-9][a-zA-Z0-9_.-]*$";

export const ComposeFile = Type.Object(
  {
    version: opt(Type.Union([Type.String(), Type.Number()])),
    name: opt(Type.String()),
    services: Type.Record(Type.String({ pattern: NAME_KEY }), ComposeService, { minProperties: 1, maxProperties: 500 }),
    networks: opt(Type.Record(Type.String({ pattern: NAME_KEY }), Network)),
    volumes: opt(Type.Record(Type.String({ pattern: NAME_KEY }), Volume)),
    secrets: opt(Type.Record(Type.String({ pattern: NAME_KEY }), FileObject)),
    configs: opt(Type.Record(Type.String({ pattern: NAME_KEY }), FileObject)),
  },
  { additionalProperties: false, patternProperties: { "^x-": {} } },
);
export type ComposeFile = Static<typeof ComposeFile>;
export type ComposeService = Static<typeof ComposeService>;
