import { join } from "node:path";
import { ClusterCa } from "../ca/ca.js";
import { createNodeKeyAndCsr, loadNodeCredentials, needsRenewal, readNodeCert, saveNodeCredentials, type NodeCredentials } from "../ca/node-cert.js";
import type { Clock } from "../lib/clock.js";
import type { EtcdTls } from "../store/etcd/etcd-client.js";

/**
 * The managed etcd has a CA of its own, made by the cluster CA code and kept beside the cluster
 * CA (DIR/ca/etcd/). etcd's --client-cert-auth admits any certificate its trusted CA signed, and
 * the cluster CA signs every worker's and every remote CLI user's certificate: trusting it would
 * let any worker write straight into the store, past the API and its checks. Only managers hold
 * the etcd CA (handed over with the CA key on a manager join).
 */
export const etcdCaDir = (dataDir: string): string => join(dataDir, "ca", "etcd");

/** Member certificates live a year and are re-issued at a start once a third of that is left. */
const MEMBER_CERT_VALIDITY_MS = 365 * 24 * 60 * 60 * 1000;

/** The etcd CA of this manager: created at the first `baton init --ha`, read on later starts. */
export function loadOrCreateEtcdCa(dataDir: string, clock: Clock): Promise<ClusterCa> {
  return ClusterCa.loadOrCreate(etcdCaDir(dataDir), { clock }, { commonName: "Baton etcd CA" });
}

/** A manager joining the HA managers saves the etcd CA it was handed. */
export async function saveEtcdCa(dataDir: string, certPem: string, keyPem: string, clock: Clock): Promise<ClusterCa> {
  const ca = await ClusterCa.fromPem(certPem, keyPem, { clock });
  await ca.save(etcdCaDir(dataDir));
  return ca;
}

/** The files etcd is started with (--cert-file, --key-file, --trusted-ca-file and their peer twins). */
export interface MemberTlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/**
 * This member's certificate, used for all of etcd's TLS: serving clients, serving and dialling
 * peers, and as Baton's client certificate to its store (the CA issues serverAuth + clientAuth).
 * SANs: the advertise address and 127.0.0.1, so both client URLs verify. Kept while valid, of
 * this CA and for these addresses; re-issued otherwise.
 */
export async function ensureMemberCertificate(
  ca: ClusterCa,
  args: { dir: string; name: string; addresses: string[]; clock: Clock },
): Promise<{ files: MemberTlsFiles; tls: EtcdTls }> {
  const files: MemberTlsFiles = { caFile: join(args.dir, "ca.crt"), certFile: join(args.dir, "node.crt"), keyFile: join(args.dir, "node.key") };
  let creds: NodeCredentials | undefined = await loadNodeCredentials(args.dir);
  if (creds && creds.caCertPem === ca.certPem) {
    const info = readNodeCert(creds.certPem);
    const sameAddresses = args.addresses.every((a) => info.addresses.includes(a));
    if (!(info.nodeId === args.name && sameAddresses && !needsRenewal(info, args.clock.now()))) creds = undefined;
  } else creds = undefined;
  if (!creds) {
    const { keyPem, csrPem } = await createNodeKeyAndCsr(args.name);
    const issued = await ca.signNodeCsr({ csrPem, role: "manager", addresses: args.addresses, validityMs: MEMBER_CERT_VALIDITY_MS });
    creds = { caCertPem: ca.certPem, certPem: issued.certPem, keyPem };
    await saveNodeCredentials(args.dir, creds);
  }
  return { files, tls: { caCertPem: creds.caCertPem, certPem: creds.certPem, keyPem: creds.keyPem } };
}
