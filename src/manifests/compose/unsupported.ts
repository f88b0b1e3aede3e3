import type { Path } from "./lines.js";

/**
 * Keys of the Compose specification that Baton does not run. They are removed before validation
 * and listed in one warning: a file written for docker deploys, and nothing is dropped silently.
 * `*` stands for any name (a service, a network…). A key not listed here and not in schema.ts is
 * an error (a typo such as `replcas`).
 */
const SERVICE_KEYS = [
  "build", "privileged", "cap_add", "cap_drop", "cgroup", "cgroup_parent", "container_name", "cpu_count", "cpu_percent", "cpu_period",
  "cpu_quota", "cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus", "cpuset", "credential_spec", "device_cgroup_rules", "devices",
  "dns", "dns_opt", "dns_search", "domainname", "expose", "extends", "external_links", "extra_hosts", "group_add", "hostname", "init",
  "ipc", "isolation", "links", "logging", "mac_address", "mem_limit", "mem_reservation", "mem_swappiness", "memswap_limit",
  "network_mode", "oom_kill_disable", "oom_score_adj", "pid", "pids_limit", "platform", "profiles", "pull_policy", "read_only",
  "restart", "runtime", "scale", "security_opt", "shm_size", "stdin_open", "storage_opt", "sysctls", "tty", "ulimits", "userns_mode",
  "uts", "volumes_from", "annotations", "attach", "blkio_config", "develop", "gpus", "label_file", "post_start", "pre_stop", "use_api_socket",
];

export const UNSUPPORTED: string[] = [
  "include",
  ...SERVICE_KEYS.map((k) => `services.*.${k}`),
  "services.*.healthcheck.start_interval",
  "services.*.deploy.resources.limits.pids",
  "services.*.deploy.resources.reservations.devices",
  "services.*.deploy.resources.reservations.generic_resources",
  "services.*.ports.*.host_ip",
  "services.*.ports.*.app_protocol",
  "services.*.volumes.*.bind",
  "services.*.volumes.*.volume",
  "services.*.volumes.*.consistency",
  "services.*.networks.*.aliases",
  "services.*.networks.*.ipv4_address",
  "services.*.networks.*.ipv6_address",
  "services.*.networks.*.priority",
  "services.*.networks.*.link_local_ips",
  "networks.*.driver_opts",
  "networks.*.ipam",
  "networks.*.enable_ipv6",
  "volumes.*.driver_opts",
  "secrets.*.driver",
  "secrets.*.driver_opts",
  "secrets.*.template_driver",
  "configs.*.template_driver",
];

const matches = (pattern: string[], path: Path): boolean => pattern.length === path.length && pattern.every((p, i) => p === "*" || p === String(path[i]));

/**
 * Removes the unsupported keys from a parsed file, in place on a copy; returns the copy and the
 * paths removed.
 */
export function stripUnsupported(model: unknown): { model: unknown; removed: Path[] } {
  const patterns = UNSUPPORTED.map((p) => p.split("."));
  const removed: Path[] = [];
  const walk = (v: unknown, path: Path): unknown => {
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, i]));
    if (v === null || typeof v !== "object") return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const p = [...path, k];
      if (patterns.some((pat) => matches(pat, p))) removed.push(p);
      else out[k] = walk(x, p);
    }
    return out;
  };
  return { model: walk(model, []), removed };
}
