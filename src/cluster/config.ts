import { readFileSync } from "node:fs";
import { join } from "node:path";
import { networkInterfaces } from "node:os";
import { BatonError } from "../lib/errors.js";
import { writeFileAtomic } from "../ca/files.js";
import type { EtcdTlsFiles } from "../store/etcd/etcd-client.js";

/** The port managers listen on for node sessions, joins and the remote API. */
export const DEFAULT_CLUSTER_PORT = 4242;

/**
 * What a data dir is, kept in DIR/cluster.json once it is part of a cluster: later starts
 * (`baton init`, `baton join` without a token, `baton up`) resume from it.
 */
export interface ClusterConfig {
  role: "manager" | "worker";
  /** This node's address as other nodes reach it. */
  advertiseAddr?: string;
  /** A manager's TLS listener, host:port (a worker keeps it for when it is promoted). */
  listenAddr?: string;
  /** Where a worker finds managers (host:port); a manager lists itself. */
  managers: string[];
  heartbeatPeriodMs?: number;
  heartbeatGraceMs?: number;
  /** A manager's store when not the embedded SQLite: `etcd://host:port,…` (`--store`). */
  store?: string;
  /** TLS to that etcd (`--etcd-ca`, `--etcd-cert`, `--etcd-key`): absolute paths, read at every start. */
  etcdTls?: EtcdTlsFiles;
  /** `baton init --ha`: the store is the managed etcd member in DIR/etcd (src/ha). */
  ha?: boolean;
  /**
   * A manager that joined a managed etcd (join or promotion): client URLs of members to add its
   * own member through. Its member is added at its first start (and again after a demotion).
   */
  etcdJoin?: string[];
}

const file = (dataDir: string): string => join(dataDir, "cluster.json");

export function readClusterConfig(dataDir: string): ClusterConfig | undefined {
  let text: string;
  try {
    text = readFileSync(file(dataDir), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    const c = JSON.parse(text) as ClusterConfig;
    if (c.role !== "manager" && c.role !== "worker") throw new Error("role");
    return c;
  } catch (err) {
    throw new BatonError("VALIDATION_FAILED", `${file(dataDir)} is not a valid cluster config`, [], { cause: err });
  }
}

export async function writeClusterConfig(dataDir: string, c: ClusterConfig): Promise<void> {
  await writeFileAtomic(dataDir, "cluster.json", JSON.stringify(c, null, 2) + "\n", 0o600);
}

/** host:port → parts; a bare host gets the default port. Errors name the flag. */
export function parseHostPort(value: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*))(?::(\d+))?$/.exec(value.trim());
  const host = m?.[1] ?? m?.[2] ?? "";
  const port = m?.[3] !== undefined ? Number(m[3]) : DEFAULT_CLUSTER_PORT;
  if (!m || !host || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new BatonError("VALIDATION_FAILED", `${flag}: "${value}" is not host[:port]`, [{ path: [flag], problem: "expected host[:port]" }]);
  return { host, port };
}

/** Like `docker swarm init`: the one non-loopback IPv4 address, or an error asking to choose. */
export function detectAdvertiseAddr(): string {
  const addrs = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a && a.family === "IPv4" && !a.internal)
    .map((a) => a!.address);
  const unique = [...new Set(addrs)];
  if (unique.length === 1) return unique[0]!;
  throw new BatonError(
    "VALIDATION_FAILED",
    unique.length === 0 ? "no network address found: pass --advertise-addr" : `this host has several addresses (${unique.join(", ")}): choose one with --advertise-addr`,
    [{ path: ["--advertise-addr"], problem: "required" }],
  );
}
