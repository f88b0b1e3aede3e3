import type Docker from "dockerode";
import type { Logger } from "../../../lib/log.js";
import type { TaskMount } from "../../../model/objects.js";
import { NETWORK_LABEL, VOLUME_LABEL } from "../labels.js";

export const ENGINE_NETWORK_PREFIX = "baton-";
/** The engine network of a Baton network: `baton-<name>` (a bridge on this node). */
export const engineNetworkName = (name: string): string => `${ENGINE_NETWORK_PREFIX}${name}`;

/** dockerode's error shape: an HTTP status and the engine's message. */
const statusOf = (err: unknown): number | undefined => (err as { statusCode?: number } | undefined)?.statusCode;

/**
 * The engine side of a task's networks and volumes: creates the bridge network of each Baton
 * network (labelled with its id) and the named volumes a task mounts, and removes a network once
 * no container is attached to it. Network changes run one at a time, and a start that attaches
 * to a network runs inside the same queue, so a network is never removed between its creation
 * and the start of the container it was made for.
 */
export class EngineAttachments {
  private queue: Promise<unknown> = Promise.resolve();
  /** Baton network id → the IPv4 subnets of its engine network here (learnt when made or found). */
  private readonly subnets = new Map<string, string[]>();
  /** Engine network name → the attachable Baton network it is for: kept while it exists, unused or not. */
  private attachable = new Map<string, { id: string; name: string; internal: boolean }>();

  constructor(
    private readonly docker: Docker,
    private readonly log: Logger,
  ) {}

  /** Runs `fn` after every earlier network change (and before any later one). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Creates the engine network when missing (or when it belongs to an earlier network of that name). */
  async ensureNetwork(n: { id: string; name: string; internal: boolean }): Promise<string> {
    const name = await this.findOrCreate(n);
    const info = (await this.docker.getNetwork(name).inspect().catch(() => undefined)) as { IPAM?: { Config?: { Subnet?: string }[] } } | undefined;
    this.subnets.set(n.id, (info?.IPAM?.Config ?? []).flatMap((c) => (c.Subnet && !c.Subnet.includes(":") ? [c.Subnet] : [])));
    return name;
  }

  /**
   * The Baton network whose engine network here holds `address`: how a container is placed in
   * the instant between its start and its task's first report (when its address is not yet known).
   */
  networkAt(address: string): string | undefined {
    for (const [id, subnets] of this.subnets) if (subnets.some((s) => inSubnet(address, s))) return id;
    return undefined;
  }

  private async findOrCreate(n: { id: string; name: string; internal: boolean }): Promise<string> {
    const name = engineNetworkName(n.name);
    try {
      const info = (await this.docker.getNetwork(name).inspect()) as { Labels?: Record<string, string>; Containers?: Record<string, unknown> };
      if (info.Labels?.[NETWORK_LABEL] === n.id) return name;
      // Made for a network of the same name since removed: replaced when nothing uses it.
      if (Object.keys(info.Containers ?? {}).length) return name;
      await this.docker.getNetwork(name).remove();
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    await this.docker.createNetwork({ Name: name, Driver: "bridge", Internal: n.internal, CheckDuplicate: true, Labels: { [NETWORK_LABEL]: n.id } });
    this.log.info({ network: name, internal: n.internal }, "engine network created");
    return name;
  }

  /**
   * The cluster's attachable networks: each one's engine network is made now and kept (not
   * pruned when no task uses it), so a standalone `docker run --network baton-NAME` can join it
   * on this node; one no longer attachable (or removed) is pruned like any other. Run in the queue.
   */
  async setAttachable(networks: readonly { id: string; name: string; internal: boolean }[]): Promise<void> {
    const before = this.attachable;
    this.attachable = new Map(networks.map((n) => [engineNetworkName(n.name), n]));
    for (const n of networks) {
      try {
        await this.ensureNetwork(n);
      } catch (err) {
        this.log.warn({ network: n.name, err: (err as Error).message }, "cannot create the engine network of an attachable network");
      }
    }
    await this.pruneNetworks([...before.keys()].filter((name) => !this.attachable.has(name)));
  }

  /** Removes the Baton-made networks among `names` that no container uses any more (attachable ones stay). */
  async pruneNetworks(names: readonly string[]): Promise<void> {
    for (const name of names) {
      if (this.attachable.has(name)) continue;
      try {
        const info = (await this.docker.getNetwork(name).inspect()) as { Labels?: Record<string, string>; Containers?: Record<string, unknown> };
        if (!info.Labels?.[NETWORK_LABEL] || Object.keys(info.Containers ?? {}).length) continue;
        // A container created but not started has no endpoint yet: one that still names the network keeps it.
        const users = await this.docker.listContainers({ all: true, filters: { network: [name] } });
        if (users.length) continue;
        await this.docker.getNetwork(name).remove();
        this.log.info({ network: name }, "engine network removed (unused)");
      } catch (err) {
        // 404: gone already; 403/409: in use after all.
        if (![404, 403, 409].includes(statusOf(err) ?? 0)) this.log.warn({ network: name, err: (err as Error).message }, "cannot remove engine network");
      }
    }
  }

  /** Removes the engine volumes Baton made (labelled) whose name is not in `keep`; one in use stays (409). */
  async pruneVolumes(keep: ReadonlySet<string>): Promise<string[]> {
    const { Volumes } = await this.docker.listVolumes({ filters: { label: [VOLUME_LABEL] } });
    const removed: string[] = [];
    for (const v of Volumes ?? []) {
      if (keep.has(v.Name)) continue;
      try {
        await this.docker.getVolume(v.Name).remove();
        removed.push(v.Name);
      } catch (err) {
        if (![404, 409].includes(statusOf(err) ?? 0)) this.log.warn({ volume: v.Name, err: (err as Error).message }, "cannot remove engine volume");
      }
    }
    return removed;
  }

  /** Creates the named volumes a task mounts (the engine would, but without Baton's label). */
  async ensureVolumes(mounts: readonly TaskMount[]): Promise<void> {
    for (const m of mounts) {
      if (m.type !== "volume" || !m.source) continue;
      try {
        await this.docker.getVolume(m.source).inspect();
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
        await this.docker.createVolume({ Name: m.source, Labels: { [VOLUME_LABEL]: m.source } });
      }
    }
  }
}

/**
 * The engine's Mounts for a task's mounts. A volume without a source is anonymous: the engine
 * makes it, and removes it with the container (`v: true` on remove).
 */
export function engineMounts(mounts: readonly TaskMount[]): Docker.MountSettings[] {
  return mounts.map((m) => ({
    Type: m.type,
    Target: m.target,
    // "" is the API's "no source" (the engine omits it): an anonymous volume.
    Source: m.source ?? "",
    ...(m.readOnly ? { ReadOnly: true } : {}),
    ...(m.tmpfsSizeBytes !== undefined ? { TmpfsOptions: { SizeBytes: m.tmpfsSizeBytes, Mode: 0o1777 } } : {}),
  }));
}

/** Whether an IPv4 address is inside a CIDR subnet. */
export function inSubnet(address: string, cidr: string): boolean {
  const [base, bits] = cidr.split("/");
  const toInt = (ip: string): number | undefined => {
    const p = ip.split(".").map(Number);
    return p.length === 4 && p.every((x) => Number.isInteger(x) && x >= 0 && x <= 255) ? ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0 : undefined;
  };
  const a = toInt(address);
  const b = toInt(base ?? "");
  const n = Number(bits);
  if (a === undefined || b === undefined || !(n >= 0 && n <= 32)) return false;
  const mask = n === 0 ? 0 : (~0 << (32 - n)) >>> 0;
  return (a & mask) === (b & mask);
}
