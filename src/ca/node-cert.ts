import { join } from "node:path";
import { BatonError } from "../lib/errors.js";
import { readOptional, writeFileAtomic } from "./files.js";
import { isCertRole, isValidNodeId, nodeUri, type CertRole } from "./role.js";
import { exportPrivateKeyPem, generateKeyPair, signingAlgorithm, x509 } from "./x509.js";

export const nodeCertFile = "node.crt";
export const nodeKeyFile = "node.key";
export const nodeCaFile = "ca.crt";

/** What a node holds: its key, its certificate, and the one CA it trusts. */
export interface NodeCredentials {
  caCertPem: string;
  certPem: string;
  keyPem: string;
}

/** What a node certificate says about its holder. */
export interface NodeCertInfo {
  nodeId: string;
  role: CertRole;
  /** Lowercase hex without leading zeros (see normalizeSerial). */
  serial: string;
  notBefore: number;
  notAfter: number;
  /** IP and DNS SANs: the addresses the node advertised when it was issued. */
  addresses: string[];
}

/**
 * A node's new key pair and a PKCS#10 request naming it (CN = node id). The private key never
 * leaves the node: only the CSR goes to the manager.
 */
export async function createNodeKeyAndCsr(nodeId: string): Promise<{ keyPem: string; csrPem: string }> {
  if (!isValidNodeId(nodeId)) throw new BatonError("VALIDATION_FAILED", `"${nodeId}" is not a node id`, [{ path: ["nodeId"], problem: "invalid" }]);
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: [{ CN: [nodeId] }], keys, signingAlgorithm });
  return { keyPem: await exportPrivateKeyPem(keys.privateKey), csrPem: csr.toString("pem") };
}

/** Serials compare as lowercase hex without leading zeros (node:tls shows them uppercase). */
export const normalizeSerial = (hex: string): string => hex.toLowerCase().replace(/^0+(?=.)/, "");

/** Reads identity, role and validity out of a node certificate (PEM or DER); does not verify it. */
export function readNodeCert(cert: string | Uint8Array): NodeCertInfo {
  let c: x509.X509Certificate;
  try {
    c = new x509.X509Certificate(typeof cert === "string" ? cert : new Uint8Array(cert));
  } catch (err) {
    throw new BatonError("BAD_REQUEST", "not an X.509 certificate", [{ path: ["certificate"], problem: "unparseable" }], { cause: err });
  }
  const nodeId = c.subjectName.getField("CN")[0] ?? "";
  const role = c.subjectName.getField("OU")[0];
  const san = c.getExtension(x509.SubjectAlternativeNameExtension);
  const names = san?.names.items ?? [];
  if (!isValidNodeId(nodeId) || !names.some((n) => n.type === "url" && n.value === nodeUri(nodeId)))
    throw new BatonError("BAD_REQUEST", "certificate does not name a Baton node", [{ path: ["certificate", "subject"], problem: "no node id" }]);
  if (!isCertRole(role))
    throw new BatonError("BAD_REQUEST", "certificate carries no node role", [{ path: ["certificate", "subject", "OU"], problem: `"${role ?? ""}"` }]);
  return {
    nodeId,
    role,
    serial: normalizeSerial(c.serialNumber),
    notBefore: c.notBefore.getTime(),
    notAfter: c.notAfter.getTime(),
    addresses: names.filter((n) => n.type === "ip" || n.type === "dns").map((n) => n.value),
  };
}

/**
 * When to renew: once less than a third of the lifetime is left (for 90 days, from day 60 on),
 * which leaves a month of retries for a node that cannot reach a manager.
 */
export function renewAt(cert: string | NodeCertInfo): number {
  const info = typeof cert === "string" ? readNodeCert(cert) : cert;
  return info.notAfter - Math.floor((info.notAfter - info.notBefore) / 3);
}

export const needsRenewal = (cert: string | NodeCertInfo, now: number): boolean => now >= renewAt(cert);

/** Saves what a joined node needs to restart without its token: key 0600, certificates 0644. */
export async function saveNodeCredentials(dir: string, creds: NodeCredentials): Promise<void> {
  await writeFileAtomic(dir, nodeKeyFile, creds.keyPem, 0o600);
  await writeFileAtomic(dir, nodeCaFile, creds.caCertPem, 0o644);
  await writeFileAtomic(dir, nodeCertFile, creds.certPem, 0o644);
}

/** The node's saved credentials, or undefined when it never joined (no certificate in dir). */
export async function loadNodeCredentials(dir: string): Promise<NodeCredentials | undefined> {
  const [certPem, keyPem, caCertPem] = await Promise.all(
    [nodeCertFile, nodeKeyFile, nodeCaFile].map((f) => readOptional(join(dir, f))),
  );
  if (certPem === undefined) return undefined;
  if (keyPem === undefined || caCertPem === undefined)
    throw new BatonError("VALIDATION_FAILED", `node credentials in ${dir} are incomplete: need ${nodeKeyFile}, ${nodeCertFile} and ${nodeCaFile}`);
  return { certPem, keyPem, caCertPem };
}
