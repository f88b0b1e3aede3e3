/**
 * Service addresses: every service with service ports gets a stable virtual address in
 * 127.77.0.0/16 — on loopback on every Linux host (all of 127.0.0.0/8 is), so `web:80` means the
 * same on every node and two services can both use port 80 — and Kubernetes-style variables.
 */
const VIP_BASE = [127, 77];
/** 127.77.0.0 and .1 are skipped; 65,534 addresses is far more services than a cluster runs. */
const FIRST = 2;
const LAST = 256 * 256 - 2;

export function vipOf(index: number): string {
  return `${VIP_BASE[0]}.${VIP_BASE[1]}.${index >> 8}.${index & 255}`;
}

/** The lowest free address, so addresses stay small and an address freed by `rm` is reused last. */
export function allocateVip(inUse: ReadonlySet<string>): string {
  for (let i = FIRST; i <= LAST; i++) {
    const v = vipOf(i);
    if (!inUse.has(v)) return v;
  }
  throw new Error("no free service address in 127.77.0.0/16");
}

/** `web` → `WEB`, `my-api.v2` → `MY_API_V2`: the prefix of <NAME>_SERVICE_HOST / _PORT. */
export function serviceEnvPrefix(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, "_");
}

/** WEB_SERVICE_HOST=<vip>, WEB_SERVICE_PORT=<first target>, WEB_SERVICE_PORT_<T>=<T> for each. */
export function discoveryVariables(services: readonly { name: string; vip?: string; targets: number[] }[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const s of services) {
    if (!s.vip || s.targets.length === 0) continue;
    const p = serviceEnvPrefix(s.name);
    env[`${p}_SERVICE_HOST`] = s.vip;
    env[`${p}_SERVICE_PORT`] = String(s.targets[0]);
    for (const t of s.targets) env[`${p}_SERVICE_PORT_${t}`] = String(t);
  }
  return env;
}
