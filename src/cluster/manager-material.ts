import { join } from "node:path";
import { ClusterCa } from "../ca/ca.js";
import { writeFileAtomic } from "../ca/files.js";
import type { ManagerMaterial } from "../ca/join.js";
import { saveNodeCredentials, type NodeCredentials } from "../ca/node-cert.js";
import { etcdCaDir, saveEtcdCa } from "../ha/etcd-pki.js";
import type { MemberStatus } from "../ha/membership.js";
import type { Clock } from "../lib/clock.js";
import { BatonError } from "../lib/errors.js";
import type { EtcdConnection, EtcdTlsFiles } from "../store/etcd/etcd-client.js";
import { caDir, certsDir } from "./authority.js";
import type { ClusterConfig } from "./config.js";

/**
 * The managed etcd's CA goes to a new manager whole (certificate and key), not a member
 * certificate issued for it: a manager already holds the cluster CA key and writes the store, so
 * the etcd CA key grants it nothing more; with it the new manager issues its own member
 * certificate (SANs of its own address), re-issues it before it expires, and can finish a join
 * that crashed halfway (src/ha/managed-etcd.ts, member.json) without any other manager's help.
 */
export async function managerMaterial(args: {
  caKeyPem: string;
  managers: string[];
  cfg: ClusterConfig;
  dataDir: string;
  clock: Clock;
  /** The store's etcd; absent on SQLite. */
  etcd?: EtcdConnection;
  /** The managed member's view of the members (`baton init --ha`). */
  members?: () => Promise<MemberStatus[]>;
}): Promise<ManagerMaterial> {
  const { cfg } = args;
  // Managers share the store: only etcd can be shared (SQLite is this host's file).
  if (!args.etcd)
    throw new BatonError("BAD_REQUEST", "this cluster's store is SQLite, on the first manager's disk: another manager needs an etcd store (`baton init --ha`, or `--store etcd://…`; docs/ha.md)", [{ path: ["role"], problem: "manager needs an etcd store" }]);
  const heartbeat = { ...(cfg.heartbeatPeriodMs ? { heartbeatPeriodMs: cfg.heartbeatPeriodMs } : {}), ...(cfg.heartbeatGraceMs ? { heartbeatGraceMs: cfg.heartbeatGraceMs } : {}) };
  const base = { caKeyPem: args.caKeyPem, managers: args.managers, ...heartbeat };
  if (cfg.ha) {
    const ca = await ClusterCa.load(etcdCaDir(args.dataDir), { clock: args.clock });
    if (!ca || !args.members) throw new BatonError("INTERNAL", `this manager runs a managed etcd but has no etcd CA in ${etcdCaDir(args.dataDir)}`);
    // Started voters: they take the new member's add and promote it.
    const members = (await args.members()).filter((m) => !m.isLearner && m.clientUrls.length > 0).flatMap((m) => m.clientUrls);
    return { ...base, managedEtcd: { caCertPem: ca.certPem, caKeyPem: await ca.exportKeyPem(), members } };
  }
  return { ...base, store: cfg.store!, ...(args.etcd.tls ? { etcdTls: args.etcd.tls } : {}) };
}

/** Where a manager that joined a user's TLS etcd keeps the PEMs it was handed (0600). */
export const joinedEtcdTlsDir = (dataDir: string): string => join(dataDir, "etcd-tls");

/**
 * The cluster.json of a node that became a manager with `material`: itself first in the
 * managers, the cluster's store and heartbeat timing. Pure: the caller saved the files named.
 */
export function managerConfigFor(material: ManagerMaterial, node: { advertiseAddr: string; listenAddr: string; port: number; etcdTlsFiles?: EtcdTlsFiles }): ClusterConfig {
  const self = `${node.advertiseAddr}:${node.port}`;
  const managed = material.managedEtcd;
  if (!managed && !material.store?.startsWith("etcd://"))
    throw new BatonError("UNAVAILABLE", "the manager handed over neither an etcd store nor a managed etcd: it is older than this baton", [{ path: ["manager", "store"], problem: "missing" }]);
  return {
    role: "manager",
    advertiseAddr: node.advertiseAddr,
    listenAddr: node.listenAddr,
    managers: [self, ...material.managers.filter((m) => m !== self)],
    ...(material.heartbeatPeriodMs ? { heartbeatPeriodMs: material.heartbeatPeriodMs } : {}),
    ...(material.heartbeatGraceMs ? { heartbeatGraceMs: material.heartbeatGraceMs } : {}),
    ...(managed ? { ha: true, etcdJoin: managed.members } : { store: material.store! }),
    ...(!managed && node.etcdTlsFiles ? { etcdTls: node.etcdTlsFiles } : {}),
  };
}

/**
 * Saves what makes this data dir a manager, key material first (0600) and cluster.json last: a
 * crash halfway leaves no config that claims to be a manager without its keys.
 */
export async function adoptManagerMaterial(
  dataDir: string,
  material: ManagerMaterial,
  args: { credentials: NodeCredentials; advertiseAddr: string; listenAddr: string; port: number; clock: Clock },
): Promise<ClusterConfig> {
  const ca = await ClusterCa.fromPem(args.credentials.caCertPem, material.caKeyPem, { clock: args.clock });
  await ca.save(caDir(dataDir));
  if (material.managedEtcd) await saveEtcdCa(dataDir, material.managedEtcd.caCertPem, material.managedEtcd.caKeyPem, args.clock);
  let etcdTlsFiles: EtcdTlsFiles | undefined;
  if (material.etcdTls) {
    const dir = joinedEtcdTlsDir(dataDir);
    const t = material.etcdTls;
    await writeFileAtomic(dir, "ca.crt", t.caCertPem, 0o600);
    etcdTlsFiles = { ca: join(dir, "ca.crt") };
    if (t.certPem && t.keyPem) {
      await writeFileAtomic(dir, "client.key", t.keyPem, 0o600);
      await writeFileAtomic(dir, "client.crt", t.certPem, 0o600);
      etcdTlsFiles = { ...etcdTlsFiles, cert: join(dir, "client.crt"), key: join(dir, "client.key") };
    }
  }
  await saveNodeCredentials(certsDir(dataDir), args.credentials);
  return managerConfigFor(material, { ...args, ...(etcdTlsFiles ? { etcdTlsFiles } : {}) });
}
