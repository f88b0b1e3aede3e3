import type { Command } from "commander";
import { Option } from "commander";
import type { Service } from "../../model/objects.js";
import type { FileReferenceInput, ServiceSpecInput } from "../../input/schemas.js";
import { addFileFlags, fileReferencesFrom } from "./file-flags.js";
import { withClient } from "../context.js";
import { collect, parseInteger, parseLabels, readEnvFile, resolveEnv } from "../parse.js";
import { waitConverged } from "../output/progress.js";
import { addUpdateConfigFlags, updateConfigFrom } from "./service-update.js";
import { addTaskFlags } from "./task-flags.js";
import { addProbeFlags, probesFrom } from "./probe-flags.js";
import { chooseDriver, isExecutableIn } from "../driver-rule.js";
import { collectMount } from "../parse-mount.js";
import type { MountInput } from "../../input/schemas.js";

interface CreateOpts {
  name?: string;
  replicas?: number;
  mode?: string;
  env?: string[];
  envFile?: string[];
  workdir?: string;
  label?: string[];
  restartCondition?: string;
  restartDelay?: string;
  restartMaxAttempts?: number;
  restartWindow?: string;
  healthCmd?: string;
  healthHttp?: string;
  healthTcp?: number;
  healthInterval?: string;
  healthTimeout?: string;
  healthRetries?: number;
  healthStartPeriod?: string;
  stopSignal?: string;
  stopGracePeriod?: string;
  constraint?: string[];
  placementPref?: string[];
  replicasMaxPerNode?: number;
  reserveCpu?: number;
  reserveMemory?: string;
  limitCpu?: number;
  limitMemory?: string;
  historyLimit?: number;
  logMaxSize?: string;
  publish?: string[];
  loadBalance?: string;
  waitForBackend?: string;
  detach?: boolean;
  quiet?: boolean;
  driver?: "process" | "docker";
  image?: string;
  entrypoint?: string;
  user?: string;
  network?: string[];
  mount?: MountInput[];
  endpointMode?: string;
  /** false with --no-healthcheck (commander's negated flag). */
  healthcheck?: boolean;
  [probeFlag: string]: unknown;
}

/** Flags follow `docker service create` wherever the concept exists. */
export function registerServiceCreate(service: Command): void {
  const create = service
    .command("create")
    .description("Create a service that runs COMMAND [ARG...] (a process) or IMAGE [ARG...] (a container) as replicated tasks")
    .argument("[command]", "executable to run (relative paths resolve against --workdir, default: the current directory), or an image reference (docs/docker.md)")
    .argument("[args...]", "its arguments")
    .addOption(new Option("--driver <driver>", "process or docker (default: docker for --image or an IMAGE argument, see docs/docker.md)").choices(["process", "docker"]))
    .option("--image <image>", "docker: run this image; every argument is the container's command")
    .option("--entrypoint <command>", "docker: replace the image's ENTRYPOINT (split on spaces)")
    .option("--no-healthcheck", "docker: do not run the image's own HEALTHCHECK")
    .option("-u, --user <user[:group]>", "docker: user inside the container")
    .passThroughOptions()
    .option("--name <name>", "service name")
    .option("--replicas <n>", "number of tasks (replicated mode)", parseInteger)
    .addOption(new Option("--mode <mode>", "replicated or global (one task per node)").choices(["replicated", "global"]))
    .option("-e, --env <KEY=VALUE>", "set an environment variable (repeatable)", collect)
    .option("--env-file <file>", "read environment variables from a file (repeatable)", collect)
    .option("-l, --label <key=value>", "service label (repeatable)", collect)
    .option("--constraint <expr>", "placement constraint, e.g. node.labels.tier==data (repeatable)", collect)
    .option("--placement-pref <pref>", "spread=node.labels.<name>: spread over its values (repeatable, nested in order)", collect)
    .option("--history-limit <n>", "ended tasks kept per slot (default 5)", parseInteger)
    .option("--log-max-size <bytes>", "per-task log size before rotation (default 10m)")
    .option("-p, --publish <port>", "publish a port: PUBLISHED:TARGET[/tcp|udp|http] or published=P,target=T,protocol=tcp|udp|http,mode=ingress|host (repeatable)", collect)
    .option("--network <network>", "attach to a network (repeatable; none: the default network); discovery sees only services sharing one (docs/networks.md)", collect)
    .option("--mount <mount>", "type=volume|bind|tmpfs,source=…,target=…[,readonly][,tmpfs-size=64m] (repeatable; docs/volumes.md)", collectMount)
    .addOption(new Option("--endpoint-mode <mode>", "vip (default: a service address through the mesh) or dnsrr (the name resolves to the containers)").choices(["vip", "dnsrr"]))
    .option("-d, --detach", "return at once instead of waiting for the service to converge")
    .option("-q, --quiet", "print only the service id");
  addTaskFlags(create, "create");
  addProbeFlags(create);
  addFileFlags(create, "create");
  addUpdateConfigFlags(create);
  create.action(async (command: string | undefined, args: string[], opts: CreateOpts, cmd: Command) => {
      const workdir = opts.workdir ?? process.cwd();
      const choice = chooseDriver({ args: command === undefined ? [] : [command, ...args], ...(opts.driver ? { driver: opts.driver } : {}), ...(opts.image !== undefined ? { image: opts.image } : {}), isExecutable: (n) => isExecutableIn(n, workdir) });
      if (choice.driver === "process" && choice.command.length === 0) cmd.error("error: missing required argument 'command' (or IMAGE with --driver docker, or --image)");
      const env = resolveEnv([...(opts.envFile ?? []).flatMap(readEnvFile), ...(opts.env ?? [])]);
      const restartPolicy = given(opts, { condition: "restartCondition", delay: "restartDelay", maxAttempts: "restartMaxAttempts", window: "restartWindow" });
      const health = given(opts, { cmd: "healthCmd", http: "healthHttp", tcp: "healthTcp", interval: "healthInterval", timeout: "healthTimeout", retries: "healthRetries", startPeriod: "healthStartPeriod" });
      // Sent as given; the API validates every field and answers with all problems at once.
      const body = {
        name: opts.name ?? defaultName(choice.driver === "docker" ? imageName(choice.image) : choice.command[0]!),
        driver: choice.driver,
        command: choice.command,
        // A process runs where the CLI is by default; a container in its image's WORKDIR.
        ...(choice.driver === "docker" ? { image: choice.image, ...(opts.workdir ? { workdir: opts.workdir } : {}) } : { workdir }),
        ...(opts.entrypoint !== undefined ? { entrypoint: opts.entrypoint.split(" ").filter(Boolean) } : {}),
        ...(opts.user ? { user: opts.user } : {}),
        ...(opts.mode ? { mode: opts.mode } : {}),
        ...(opts.replicas !== undefined ? { replicas: opts.replicas } : {}),
        ...(env.length ? { env } : {}),
        ...(opts.label ? { labels: parseLabels(opts.label) } : {}),
        ...(Object.keys(restartPolicy).length ? { restartPolicy } : {}),
        ...(Object.keys(health).length ? { healthcheck: health } : {}),
        ...(opts.healthcheck === false ? { noHealthcheck: true } : {}),
        ...(opts.stopSignal ? { stopSignal: opts.stopSignal } : {}),
        ...(opts.stopGracePeriod ? { stopGracePeriod: opts.stopGracePeriod } : {}),
        ...(opts.constraint ? { constraints: opts.constraint } : {}),
        ...(opts.placementPref ? { placementPrefs: opts.placementPref } : {}),
        ...(opts.replicasMaxPerNode !== undefined ? { maxReplicasPerNode: opts.replicasMaxPerNode } : {}),
        ...(opts.reserveCpu !== undefined ? { reserveCpus: opts.reserveCpu } : {}),
        ...(opts.reserveMemory ? { reserveMemory: opts.reserveMemory } : {}),
        ...(opts.limitCpu !== undefined ? { limitCpus: opts.limitCpu } : {}),
        ...(opts.limitMemory ? { limitMemory: opts.limitMemory } : {}),
        ...(opts.historyLimit !== undefined ? { taskHistoryLimit: opts.historyLimit } : {}),
        ...(opts.logMaxSize ? { logMaxSize: opts.logMaxSize } : {}),
        ...(opts.publish ? { publish: opts.publish } : {}),
        ...(opts.loadBalance ? { loadBalance: opts.loadBalance } : {}),
        ...(opts.waitForBackend ? { waitForBackend: opts.waitForBackend } : {}),
        ...(opts.network ? { networks: opts.network } : {}),
        ...(opts.mount ? { mounts: opts.mount } : {}),
        ...(opts.endpointMode ? { endpointMode: opts.endpointMode } : {}),
        ...probesFrom(opts),
        ...fileReferencesFrom(opts as { secret?: FileReferenceInput[]; config?: FileReferenceInput[] }),
        ...(updateConfigFrom(opts, "update") ? { update: updateConfigFrom(opts, "update") } : {}),
        ...(updateConfigFrom(opts, "rollback") ? { rollback: updateConfigFrom(opts, "rollback") } : {}),
      } as ServiceSpecInput;
      await withClient(cmd, async (c) => {
        const created = await c.call<Service>("POST", "/v1/services", body);
        process.stdout.write(created.id + "\n");
        if (!opts.detach && !opts.quiet) await waitConverged(c, created.id);
      });
    });
}

/** The options that were given, under the API's field names. */
function given(opts: CreateOpts, names: Record<string, keyof CreateOpts>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, option] of Object.entries(names)) if (opts[option] !== undefined) out[field] = opts[option];
  return out;
}

/** `registry:5000/team/app:1.2@sha256:…` → `app`. */
function imageName(image: string): string {
  return image.replace(/@.*$/, "").split("/").pop()!.replace(/:.*$/, "");
}

/** Like docker's random names, but predictable: the command's base name. */
function defaultName(command: string): string {
  const base = command.split("/").pop()!.replace(/[^a-zA-Z0-9_.-]/g, "-");
  return /^[a-zA-Z0-9]/.test(base) ? base : `svc-${base}`;
}
