import { createWriteStream, statSync } from "node:fs";
import { PassThrough } from "node:stream";
import Docker from "dockerode";
import type { NetworkAttachment } from "../../../dispatcher/protocol.js";
import type { Clock } from "../../../lib/clock.js";
import type { Logger } from "../../../lib/log.js";
import type { HealthConfig } from "../../../model/objects.js";
import { StartError, type Driver, type ExecResult, type ExitStatus, type OwnedTask, type Prepared, type StartRequest, type TaskHandle, type TaskInspection, type TaskStats } from "../driver.js";
import { NODE_LABEL, TASK_LABEL } from "../labels.js";
import { ENGINE_NETWORK_PREFIX, EngineAttachments, engineMounts } from "./attachments.js";

export interface DockerDriverOptions {
  clock: Clock;
  log: Logger;
  /** @default DOCKER_HOST's unix socket (as the docker CLI reads it), else /var/run/docker.sock */
  socketPath?: string;
  /**
   * How long a missing image may take to pull before the task is rejected with
   * `image not found locally`. Short: with no registry a pull hangs on DNS or connect, and a
   * task must never wait on that. @default 3000
   */
  pullTimeoutMs?: number;
}

const DEFAULT_ENGINE_SOCKET = "/var/run/docker.sock";

/**
 * The engine's socket from DOCKER_HOST, read as the docker CLI reads it: unset or empty is the
 * default socket, `unix:///path` a socket. Baton speaks to an engine on a unix socket only (TCP
 * would need the engine's TLS); any other value is an error the caller reports.
 */
export function engineSocket(dockerHost: string | undefined): { socketPath: string } | { error: string } {
  if (!dockerHost) return { socketPath: DEFAULT_ENGINE_SOCKET };
  const m = /^unix:\/\/(\/.+)$/.exec(dockerHost);
  if (m) return { socketPath: m[1]! };
  return { error: `DOCKER_HOST ${JSON.stringify(dockerHost)}: Baton reaches the engine on a unix socket only (unix:///path/docker.sock)` };
}

/** An engine that does not answer a ping this fast is not offered (the node starts without docker). */
const PING_TIMEOUT_MS = 1500;
/** After the container ended, this long for its last log lines to reach the file before the end is reported. */
const LOG_DRAIN_MS = 500;
/** Retry delay of a wait whose connection to the engine broke (engine restart). */
const WAIT_RETRY_MS = 1000;

/** The engine's error with an HTTP status (dockerode's shape). */
interface EngineError {
  statusCode?: number;
  message?: string;
  json?: { message?: string };
}
const statusOf = (err: unknown): number | undefined => (err as EngineError | undefined)?.statusCode;
const messageOf = (err: unknown): string => {
  const e = err as EngineError | undefined;
  return (e?.json?.message ?? e?.message ?? String(err)).trim();
};

/** A log stream from one container into its task's log file. */
interface Follower {
  stop(): void;
  /** Settles when the engine ended the stream (the container stopped) and the file has the lines. */
  ended: Promise<void>;
}

/**
 * Runs tasks as containers on the local Docker Engine (dockerode on its socket). Containers are
 * labelled with the task, service and node ids, so a restarted agent re-adopts them by id and
 * removes the ones no record holds. Ports: each service target is published on the host port the
 * agent allocated for the task (HostIp 0.0.0.0), so the mesh's backend `host:port` reaches the
 * container unchanged. Logs are streamed (demultiplexed) into the task's log file, which is what
 * `service logs` reads for every driver.
 */
export class DockerDriver implements Driver {
  readonly name = "docker";
  private readonly docker: Docker;
  private readonly followers = new Map<string, Follower>();
  private readonly pullTimeoutMs: number;
  private readonly attachments: EngineAttachments;
  /**
   * Images this driver has seen present, with their HEALTHCHECK: a 30-replica create inspects its
   * image once, not 30 times. An image removed later is noticed by the create (404), which
   * forgets it here.
   */
  private readonly presentImages = new Map<string, Prepared>();
  /** DOCKER_HOST names no engine Baton can use: the driver is never offered (not the default socket's engine instead). */
  private readonly engineError: boolean;

  constructor(private readonly opts: DockerDriverOptions) {
    const engine = opts.socketPath ? { socketPath: opts.socketPath } : engineSocket(process.env.DOCKER_HOST);
    if ("error" in engine) opts.log.warn({ DOCKER_HOST: process.env.DOCKER_HOST }, `${engine.error}: containers will not run here`);
    this.engineError = "error" in engine;
    this.docker = new Docker({ socketPath: "socketPath" in engine ? engine.socketPath : DEFAULT_ENGINE_SOCKET });
    this.pullTimeoutMs = opts.pullTimeoutMs ?? 3000;
    this.attachments = new EngineAttachments(this.docker, opts.log);
  }

  /** The Baton networks of a container at `address` as far as the engine networks tell (see EngineAttachments.networkAt). */
  networksOfAddress(address: string): string[] | undefined {
    const id = this.attachments.networkAt(address);
    return id ? [id] : undefined;
  }

  setAttachableNetworks(networks: readonly NetworkAttachment[]): Promise<void> {
    return this.attachments.exclusive(() => this.attachments.setAttachable(networks));
  }

  pruneVolumes(keep: ReadonlySet<string>): Promise<string[]> {
    return this.attachments.pruneVolumes(keep);
  }

  async isAvailable(): Promise<boolean> {
    if (this.engineError) return false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("ping timed out")), PING_TIMEOUT_MS)));
    try {
      await Promise.race([this.docker.ping(), timeout]);
      return true;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The image is used as it is when the engine has it; else pulled within the timeout; else the
   * task is rejected. Answers the image's HEALTHCHECK, which Baton runs (the engine does not).
   */
  async prepare(req: StartRequest): Promise<Prepared> {
    const image = req.image;
    if (!image) throw new StartError("the docker driver needs an image");
    const prepared = this.presentImages.get(image) ?? (await this.inspectImage(image)) ?? (await this.pullAndInspect(image));
    if (!prepared) throw new StartError(`image not found locally: ${image}`);
    try {
      await this.attachments.ensureVolumes(req.mounts ?? []);
    } catch (err) {
      throw new StartError(`docker: cannot create a volume: ${messageOf(err)}`);
    }
    return prepared;
  }

  /** A pull within the timeout (there may be no registry), then the image as the engine has it, if at all. */
  private async pullAndInspect(image: string): Promise<Prepared | undefined> {
    try {
      await this.pull(image);
    } catch (err) {
      this.opts.log.debug({ image, err: messageOf(err) }, "image pull failed");
    }
    return this.inspectImage(image);
  }

  /**
   * Creates and starts the container. With Baton networks, the start runs in the network queue:
   * its networks are made (or found) first and cannot be pruned before the container is on them.
   */
  async start(req: StartRequest): Promise<TaskHandle> {
    if (!req.networks?.length) return this.createAndStart(req, []);
    return this.attachments.exclusive(async () => {
      let names: string[];
      try {
        names = [];
        for (const n of req.networks!) names.push(await this.attachments.ensureNetwork(n));
      } catch (err) {
        throw new StartError(`docker: cannot create the network: ${messageOf(err)}`);
      }
      return this.createAndStart(req, names);
    });
  }

  private async createAndStart(req: StartRequest, networks: string[]): Promise<TaskHandle> {
    const proto = req.udp ? "udp" : "tcp";
    const ports = Object.entries(req.ports ?? {});
    const limits = req.limits;
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer({
        ...(req.name ? { name: req.name } : {}),
        Image: req.image!,
        ...(req.command.length ? { Cmd: req.command } : {}),
        ...(req.entrypoint ? { Entrypoint: req.entrypoint } : {}),
        Env: Object.entries(req.env).map(([k, v]) => `${k}=${v}`),
        ...(req.user ? { User: req.user } : {}),
        ...(req.workdir ? { WorkingDir: req.workdir } : {}),
        Labels: req.labels ?? {},
        ExposedPorts: Object.fromEntries(ports.map(([target]) => [`${target}/${proto}`, {}])),
        // The engine takes one network at create (API 1.41); the others are connected before the start.
        ...(networks.length ? { NetworkingConfig: { EndpointsConfig: { [networks[0]!]: { ...(req.aliases?.length ? { Aliases: req.aliases } : {}) } } } } : {}),
        HostConfig: {
          ...(networks.length ? { NetworkMode: networks[0]! } : {}),
          // Volumes, binds and tmpfs of the spec, then one read-only bind per secret or config file
          // (from the agent's per-task directory).
          ...(req.mounts?.length || req.fileMounts?.length
            ? { Mounts: [...engineMounts(req.mounts ?? []), ...(req.fileMounts ?? []).map((m) => ({ Type: "bind" as const, Source: m.source, Target: m.target, ReadOnly: true }))] }
            : {}),
          ...(req.dns?.length ? { Dns: req.dns } : {}),
          PortBindings: Object.fromEntries(ports.map(([target, host]) => [`${target}/${proto}`, [{ HostIp: "0.0.0.0", HostPort: String(host) }]])),
          ...(limits?.cpus !== undefined ? { NanoCpus: Math.round(limits.cpus * 1e9) } : {}),
          ...(limits?.memoryBytes !== undefined ? { Memory: limits.memoryBytes } : {}),
          // Baton restarts tasks (as new tasks); the engine must not.
          RestartPolicy: { Name: "no" },
        },
        // Baton runs the image's HEALTHCHECK itself (docker exec) unless the service replaced or
        // disabled it; the engine running it too would double the checks.
        Healthcheck: { Test: ["NONE"] },
      });
    } catch (err) {
      if (statusOf(err) === 404 && /no such image/i.test(messageOf(err))) {
        this.presentImages.delete(req.image!);
        throw new StartError(`image not found locally: ${req.image}`);
      }
      throw new StartError(`docker: cannot create the container: ${messageOf(err)}`);
    }
    try {
      for (const name of networks.slice(1)) await this.docker.getNetwork(name).connect({ Container: container.id, EndpointConfig: { ...(req.aliases?.length ? { Aliases: req.aliases } : {}) } });
      await container.start();
    } catch (err) {
      // Never ran (bad command, port taken): nothing of it is kept.
      await container.remove({ force: true, v: true }).catch(() => undefined);
      throw new StartError(`docker: cannot start the container: ${messageOf(err)}`);
    }
    const handle: TaskHandle = { pid: 0, startTime: "", driver: this.name, containerId: container.id, logPath: req.logPath, statePrefix: req.statePrefix, networks };
    this.follow(handle, undefined);
    const info = await container.inspect().catch(() => undefined);
    const addresses = Object.values(info?.NetworkSettings.Networks ?? {}).flatMap((n) => (n.IPAddress ? [n.IPAddress] : []));
    return { ...handle, pid: info?.State.Pid ?? 0, ...(addresses.length ? { addresses } : {}) };
  }

  wait(handle: TaskHandle, onExit: (s: ExitStatus) => void): () => void {
    const container = this.docker.getContainer(handle.containerId!);
    let done = false;
    let cancelRetry = (): void => undefined;
    const abort = new AbortController();
    // Adopted: follow from where the file was last written (docker's `since` is in seconds, so a
    // line or two of that second may repeat).
    if (!this.followers.has(handle.containerId!)) this.follow(handle, sinceOf(handle.logPath));
    const finish = async (status: ExitStatus): Promise<void> => {
      if (done) return;
      done = true;
      const f = this.followers.get(handle.containerId!);
      if (f) await Promise.race([f.ended, new Promise((r) => setTimeout(r, LOG_DRAIN_MS))]);
      onExit(status);
    };
    const waitOnce = (): void => {
      container.wait({ abortSignal: abort.signal }).then(
        async (r: { StatusCode: number }) => {
          const info = await container.inspect().catch(() => undefined);
          await finish({ exitCode: r.StatusCode, ...(info?.State.OOMKilled ? { oomKilled: true } : {}) });
        },
        async (err: unknown) => {
          if (done || abort.signal.aborted) return;
          if (statusOf(err) === 404) return finish({ message: "container removed outside Baton; exit status unknown" });
          this.opts.log.warn({ containerId: handle.containerId, err: messageOf(err) }, "waiting on a container failed; retrying");
          cancelRetry = this.opts.clock.setTimer(WAIT_RETRY_MS, waitOnce);
        },
      );
    };
    waitOnce();
    return () => {
      done = true;
      cancelRetry();
      abort.abort();
      this.stopFollowing(handle);
    };
  }

  signal(handle: TaskHandle, signal: NodeJS.Signals): void {
    this.docker
      .getContainer(handle.containerId!)
      .kill({ signal })
      .catch((err: unknown) => {
        // 409: not running any more; 404: gone. Both mean there is nothing to signal.
        if (statusOf(err) !== 409 && statusOf(err) !== 404) this.opts.log.warn({ containerId: handle.containerId, signal, err: messageOf(err) }, "cannot signal container");
      });
  }

  /** `docker exec`: the command runs in the container, with its environment, user and workdir. */
  async exec(handle: TaskHandle, command: string[], timeoutMs: number): Promise<ExecResult> {
    const container = this.docker.getContainer(handle.containerId!);
    try {
      const e = await container.exec({ Cmd: command, AttachStdout: true, AttachStderr: true });
      const stream = await e.start({ hijack: true, stdin: false });
      let out = "";
      const sink = new PassThrough();
      sink.on("data", (b: Buffer) => (out = (out + b.toString()).slice(-512)));
      this.docker.modem.demuxStream(stream, sink, sink);
      const ended = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          stream.destroy();
          resolve(false);
        }, timeoutMs);
        const end = (): void => {
          clearTimeout(timer);
          resolve(true);
        };
        stream.once("end", end);
        stream.once("close", end);
        stream.once("error", end);
      });
      if (!ended) return { ok: false, output: `health check timed out after ${timeoutMs}ms` };
      const code = (await e.inspect()).ExitCode;
      return { ok: code === 0, output: out.trim() || `exit code ${code}` };
    } catch (err) {
      return { ok: false, output: `docker exec: ${messageOf(err)}` };
    }
  }

  async inspect(handle: TaskHandle): Promise<TaskInspection | undefined> {
    try {
      const s = (await this.docker.getContainer(handle.containerId!).inspect()).State;
      const health = s.Health?.Status;
      return {
        running: s.Running,
        pid: s.Pid,
        ...(s.Running ? {} : { exitCode: s.ExitCode }),
        ...(s.OOMKilled ? { oomKilled: true } : {}),
        ...(health === "starting" || health === "healthy" || health === "unhealthy" ? { health } : {}),
      };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  /** One sample of the engine's stats: CPU since its previous sample, memory in use. */
  async stats(handle: TaskHandle): Promise<TaskStats | undefined> {
    try {
      const s = (await this.docker.getContainer(handle.containerId!).stats({ stream: false })) as Docker.ContainerStats;
      const cpuDelta = s.cpu_stats.cpu_usage.total_usage - s.precpu_stats.cpu_usage.total_usage;
      const systemDelta = (s.cpu_stats.system_cpu_usage ?? 0) - (s.precpu_stats.system_cpu_usage ?? 0);
      const cores = s.cpu_stats.online_cpus ?? s.cpu_stats.cpu_usage.percpu_usage?.length ?? 1;
      // As `docker stats`: memory in use without the page cache the kernel can drop (v1: total_inactive_file, v2: inactive_file).
      const ms = s.memory_stats as { usage?: number; stats?: Record<string, number> };
      const cache = ms.stats?.total_inactive_file ?? ms.stats?.inactive_file ?? 0;
      return { cpus: systemDelta > 0 ? (cpuDelta / systemDelta) * cores : 0, memoryBytes: Math.max(0, (ms.usage ?? 0) - cache) };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  async listOwned(nodeId: string): Promise<OwnedTask[]> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [`${NODE_LABEL}=${nodeId}`] } });
    return list.map((c) => ({ taskId: c.Labels[TASK_LABEL] ?? "", handle: { pid: 0, startTime: "", driver: this.name, containerId: c.Id } }));
  }

  async remove(handle: TaskHandle): Promise<void> {
    this.stopFollowing(handle);
    // A stray's handle (found by label) or an older record does not say its networks: the engine does.
    const networks = handle.networks ?? (await this.engineNetworksOf(handle.containerId!));
    try {
      await this.docker.getContainer(handle.containerId!).remove({ force: true, v: true });
    } catch (err) {
      // 404: gone already; 409: a removal is in progress.
      if (statusOf(err) !== 404 && statusOf(err) !== 409) throw err;
    }
    // Its networks go with the last container on them (in the queue: never under a starting one).
    if (networks.length) await this.attachments.exclusive(() => this.attachments.pruneNetworks(networks));
  }

  /** The Baton-made engine networks a container is on (none when it is gone). */
  private async engineNetworksOf(containerId: string): Promise<string[]> {
    const info = await this.docker.getContainer(containerId).inspect().catch(() => undefined);
    return Object.keys(info?.NetworkSettings.Networks ?? {}).filter((n) => n.startsWith(ENGINE_NETWORK_PREFIX));
  }

  /** The task ended: its container goes (Baton keeps the task's history, not the container). */
  cleanup(handle: TaskHandle): void {
    this.remove(handle).catch((err: unknown) => this.opts.log.warn({ containerId: handle.containerId, err: messageOf(err) }, "cannot remove container"));
  }

  /** What a start needs to know of a local image; undefined when the engine does not have it. */
  private async inspectImage(image: string): Promise<Prepared | undefined> {
    try {
      const info = await this.docker.getImage(image).inspect();
      const imageHealth = healthOf(info.Config?.Healthcheck);
      const prepared: Prepared = imageHealth ? { imageHealth } : {};
      this.presentImages.set(image, prepared);
      return prepared;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw new StartError(`docker: ${messageOf(err)}`);
    }
  }

  private async pull(image: string): Promise<void> {
    const abortSignal = AbortSignal.timeout(this.pullTimeoutMs);
    const stream = await this.docker.pull(image, { abortSignal });
    await new Promise<void>((resolve, reject) => {
      abortSignal.addEventListener("abort", () => reject(new Error(`pull timed out after ${this.pullTimeoutMs} ms`)), { once: true });
      this.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve()));
    });
  }

  /** Appends the container's stdout and stderr (demultiplexed) to the task's log file. */
  private follow(handle: TaskHandle, sinceSeconds: number | undefined): void {
    const id = handle.containerId!;
    if (!handle.logPath || this.followers.has(id)) return;
    const file = createWriteStream(handle.logPath, { flags: "a" });
    file.on("error", (err) => this.opts.log.warn({ containerId: id, err }, "cannot write container logs"));
    let stream: NodeJS.ReadableStream | undefined;
    let stopped = false;
    let ended!: () => void;
    const follower: Follower = {
      ended: new Promise((r) => (ended = r)),
      stop: () => {
        stopped = true;
        (stream as { destroy?: () => void } | undefined)?.destroy?.();
        file.end();
        ended();
      },
    };
    this.followers.set(id, follower);
    this.docker
      .getContainer(id)
      .logs({ follow: true, stdout: true, stderr: true, ...(sinceSeconds !== undefined ? { since: sinceSeconds } : {}) })
      .then(
        (s) => {
          stream = s;
          if (stopped) return follower.stop();
          this.docker.modem.demuxStream(s, file, file);
          const end = (): void => {
            file.end(() => ended());
          };
          s.once("end", end);
          s.once("close", end);
          s.once("error", end);
        },
        (err: unknown) => {
          if (statusOf(err) !== 404) this.opts.log.warn({ containerId: id, err: messageOf(err) }, "cannot follow container logs");
          file.end();
          ended();
        },
      );
  }

  private stopFollowing(handle: TaskHandle): void {
    const f = this.followers.get(handle.containerId!);
    if (!f) return;
    this.followers.delete(handle.containerId!);
    f.stop();
  }
}

/** An image's HEALTHCHECK (Config.Healthcheck) as the engine stores it: durations in ns, 0 = default. */
interface ImageHealthcheck {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  Retries?: number;
  StartPeriod?: number;
}

/**
 * The image's HEALTHCHECK as a Baton health check with docker's defaults (30 s, 30 s, 3 retries,
 * no start period). `CMD-SHELL x` runs `/bin/sh -c x`, `CMD a b` runs `a b`, both inside the
 * container; `NONE` or no test: no check.
 */
export function healthOf(h: ImageHealthcheck | undefined): HealthConfig | undefined {
  const [kind, ...rest] = h?.Test ?? [];
  const command = kind === "CMD-SHELL" ? ["/bin/sh", "-c", rest.join(" ")] : kind === "CMD" ? rest : [];
  if (!command.length || command.at(-1) === "") return undefined;
  const ms = (ns: number | undefined, fallback: number): number => (ns && ns > 0 ? Math.max(1, Math.round(ns / 1e6)) : fallback);
  return {
    check: { kind: "exec", command },
    intervalMs: ms(h!.Interval, 30_000),
    timeoutMs: ms(h!.Timeout, 30_000),
    retries: h!.Retries && h!.Retries > 0 ? h!.Retries : 3,
    startPeriodMs: ms(h!.StartPeriod, 0),
  };
}

/** The log file's last write, in whole seconds (docker's `since`); undefined: from the start. */
function sinceOf(logPath: string | undefined): number | undefined {
  if (!logPath) return undefined;
  try {
    return Math.floor(statSync(logPath).mtimeMs / 1000);
  } catch {
    return undefined;
  }
}
