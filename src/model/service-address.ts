/**
 * Service addresses: a stable virtual IP per service in 127.0.0.0/8 and the Kubernetes-style
 * environment names that carry it to tasks. Pure functions; the caller persists what it allocated.
 *
 * Linux routes all of 127.0.0.0/8 to the loopback interface, so a listener can bind 127.77.0.5
 * with no configuration (verified on this project's kernel; macOS would need `ifconfig lo0 alias`).
 */

/** 127.77.0.0/16: far from 127.0.0.1 and 127.0.0.53 (systemd-resolved), 65 534 addresses. */
export const MESH_ADDRESS = "127.77.0.1"; // the mesh's own (its DNS responder): never a service's
export const VIP_RANGE: VipRange = { base: (127 << 24) | (77 << 16), size: 1 << 16, meshBlock: true };

/** `meshBlock`: the range's first /24 is the mesh's own (its DNS responders here and in the container range). */
export interface VipRange {
  base: number;
  size: number;
  meshBlock?: boolean;
}

/**
 * A VIP for `serviceName`: derived from a hash of the name, so the same name gets the same
 * address on every node and after a restart, moving to the next free address only on a
 * collision with `inUse`. Skips .0 and .255 host bytes (not wrong on loopback, but confusing).
 * Throws when the range is full.
 */
export function allocateVip(serviceName: string, inUse: ReadonlySet<string>, range: VipRange = VIP_RANGE): string {
  const start = fnv1a(serviceName) % range.size;
  for (let i = 0; i < range.size; i++) {
    const n = (range.base + ((start + i) % range.size)) >>> 0;
    const last = n & 0xff;
    if (last === 0 || last === 255) continue;
    const ip = toIp(n);
    if (range.meshBlock && n >>> 8 === range.base >>> 8) continue;
    if (ip !== "127.0.0.1" && ip !== MESH_ADDRESS && !inUse.has(ip)) return ip;
  }
  throw new Error(`no free service address in ${toIp(range.base)}/${32 - Math.log2(range.size)}`);
}

/** `web` → `WEB`, `my-api.v2` → `MY_API_V2`: uppercase, every non-alphanumeric becomes `_`. */
export function envPrefix(serviceName: string): string {
  const p = serviceName.toUpperCase().replace(/[^A-Z0-9]/g, "_");
  return /^[0-9]/.test(p) ? `_${p}` : p;
}

/** `{ WEB_SERVICE_HOST: vip, WEB_SERVICE_PORT: "80" }`, as Kubernetes gives pods. */
export function serviceEnv(serviceName: string, host: string, port: number): Record<string, string> {
  const p = envPrefix(serviceName);
  return { [`${p}_SERVICE_HOST`]: host, [`${p}_SERVICE_PORT`]: String(port) };
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const toIp = (n: number): string => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join(".");

/**
 * WEB_SERVICE_HOST=<vip>, WEB_SERVICE_PORT=<first target>, WEB_SERVICE_PORT_<T>=<T> for each.
 * `container`: the VIPs' twins in the container range, which a container can reach.
 */
export function discoveryVariables(services: readonly { name: string; vip?: string; targets: number[] }[], container = false): Record<string, string> {
  const env: Record<string, string> = {};
  for (const s of services) {
    if (!s.vip || s.targets.length === 0) continue;
    const p = envPrefix(s.name);
    env[`${p}_SERVICE_HOST`] = container ? containerAddressOf(s.vip) : s.vip;
    env[`${p}_SERVICE_PORT`] = String(s.targets[0]);
    for (const t of s.targets) env[`${p}_SERVICE_PORT_${t}`] = String(t);
  }
  return env;
}

/**
 * The container range: 198.18.0.0/16 (RFC 2544, for benchmarks: never on a real network). A
 * container's 127.0.0.0/8 is its own loopback, so it cannot reach a VIP; it reaches the VIP's
 * twin instead, 127.77.a.b → 198.18.a.b, which the host routes to itself (`ip route add local
 * 198.18.0.0/16 dev lo`, done by Baton when it may) and where the mesh listens too.
 */
export const CONTAINER_RANGE = { prefix: "198.18.", cidr: "198.18.0.0/16" } as const;

/** 127.77.a.b → 198.18.a.b: the same service address as a container reaches it. */
export function containerAddressOf(vip: string): string {
  const parts = vip.split(".");
  return `${CONTAINER_RANGE.prefix}${parts[2]}.${parts[3]}`;
}

/** The mesh's candidate addresses for its container DNS responder: 198.18.0.1 … .254 (one per Baton on a host). */
export const containerDnsCandidates = (): string[] => Array.from({ length: 254 }, (_, i) => `${CONTAINER_RANGE.prefix}0.${i + 1}`);
