import { isIP } from "node:net";
import { join } from "node:path";
import type { Clock } from "../lib/clock.js";
import { BatonError } from "../lib/errors.js";
import { caFingerprint } from "./fingerprint.js";
import { readOptional, writeFileAtomic } from "./files.js";
import { isValidNodeId, nodeUri, type CertRole } from "./role.js";
import {
  type CryptoKeyPair,
  type EcKeyAlgorithm,
  exportPrivateKeyPem,
  generateKeyPair,
  importKeyPairPem,
  keyAlgorithm,
  newSerialNumber,
  signingAlgorithm,
  x509,
} from "./x509.js";

const DAY_MS = 24 * 60 * 60 * 1000;

/** Node certificates live 90 days by default and are renewed with a third of that left. */
export const defaultNodeCertValidityMs = 90 * DAY_MS;
/** The root lives 20 years, as swarmkit's does: rotating it means re-issuing every node certificate. */
export const defaultCaValidityMs = 20 * 365 * DAY_MS;
/**
 * notBefore is set this far in the past: a node whose clock is a little behind the manager's
 * would otherwise refuse a certificate that is "not yet valid" (swarmkit backdates by an hour too).
 */
export const certBackdateMs = 60 * 60 * 1000;

export const caCertFile = "ca.crt";
export const caKeyFile = "ca.key";

export interface ClusterCaDeps {
  clock: Clock;
}

export interface CreateCaOptions {
  /** @default "Baton cluster CA" */
  commonName?: string;
  /** @default defaultCaValidityMs (20 years) */
  validityMs?: number;
}

export interface SignNodeCsrRequest {
  /** PKCS#10 request in PEM, made by the node with its own key (see createNodeKeyAndCsr). */
  csrPem: string;
  /** Granted by the join token the node presented, never taken from the CSR. */
  role: CertRole;
  /** Addresses the node advertises: IPs become IP SANs, anything else a DNS SAN. */
  addresses?: string[];
  /** @default defaultNodeCertValidityMs (90 days) */
  validityMs?: number;
  /** When set, the CSR's CN must name this node (a renewal must not change identity). */
  expectNodeId?: string;
}

export interface IssuedNodeCert {
  nodeId: string;
  role: CertRole;
  /** Lowercase hex, as revocation lists and node:tls's `serialNumber` (uppercased) use it. */
  serial: string;
  certPem: string;
  notAfter: number;
}

/**
 * The cluster's root of trust: a self-signed ECDSA P-256 certificate and its key. It signs node
 * certificates (leaves only; there are no intermediates) and nothing else.
 */
export class ClusterCa {
  /** SHA-256 of the DER certificate in base32: what join tokens pin. */
  readonly fingerprint: string;

  private constructor(
    readonly certPem: string,
    private readonly cert: x509.X509Certificate,
    private readonly keys: CryptoKeyPair,
    private readonly deps: ClusterCaDeps,
  ) {
    this.fingerprint = caFingerprint(certPem);
  }

  /** A new root: fresh key, self-signed certificate valid from now (backdated) for `validityMs`. */
  static async create(deps: ClusterCaDeps, opts: CreateCaOptions = {}): Promise<ClusterCa> {
    const keys = await generateKeyPair();
    const now = deps.clock.now();
    const name: x509.JsonName = [{ CN: [opts.commonName ?? "Baton cluster CA"] }, { O: ["baton"] }];
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: newSerialNumber(),
      name,
      notBefore: new Date(now - certBackdateMs),
      notAfter: new Date(now + (opts.validityMs ?? defaultCaValidityMs)),
      keys,
      signingAlgorithm,
      extensions: [
        // pathLen 0: the CA may sign leaves, never another CA.
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return new ClusterCa(cert.toString("pem"), cert, keys, deps);
  }

  /** From PEM strings; refuses a key that does not belong to the certificate. */
  static async fromPem(certPem: string, keyPem: string, deps: ClusterCaDeps): Promise<ClusterCa> {
    let cert: x509.X509Certificate;
    let keys: CryptoKeyPair;
    try {
      cert = new x509.X509Certificate(certPem);
      keys = await importKeyPairPem(keyPem);
    } catch (err) {
      throw new BatonError("VALIDATION_FAILED", "cluster CA certificate or key is not valid PEM", [], { cause: err });
    }
    const certKey = Buffer.from(cert.publicKey.rawData);
    const ownKey = Buffer.from(await crypto.subtle.exportKey("spki", keys.publicKey));
    if (!certKey.equals(ownKey)) throw new BatonError("VALIDATION_FAILED", "cluster CA key does not match its certificate");
    return new ClusterCa(cert.toString("pem"), cert, keys, deps);
  }

  /** Reads `ca.crt` and `ca.key` from dir; undefined when the CA was never created there. */
  static async load(dir: string, deps: ClusterCaDeps): Promise<ClusterCa | undefined> {
    const certPem = await readOptional(join(dir, caCertFile));
    const keyPem = await readOptional(join(dir, caKeyFile));
    if (certPem === undefined && keyPem === undefined) return undefined;
    if (certPem === undefined || keyPem === undefined)
      throw new BatonError("VALIDATION_FAILED", `cluster CA in ${dir} is incomplete: need both ${caCertFile} and ${caKeyFile}`);
    return ClusterCa.fromPem(certPem, keyPem, deps);
  }

  /** What `baton init` does: resume the CA of the data dir, or create and save one at first start. */
  static async loadOrCreate(dir: string, deps: ClusterCaDeps, opts: CreateCaOptions = {}): Promise<ClusterCa> {
    const existing = await ClusterCa.load(dir, deps);
    if (existing) return existing;
    const ca = await ClusterCa.create(deps, opts);
    await ca.save(dir);
    return ca;
  }

  /** Writes the key (0600) before the certificate, so a present certificate implies a present key. */
  async save(dir: string): Promise<void> {
    await writeFileAtomic(dir, caKeyFile, await this.exportKeyPem(), 0o600);
    await writeFileAtomic(dir, caCertFile, this.certPem, 0o644);
  }

  /** The private key as PKCS#8 PEM: for `save`, and for a manager that hands the CA to another (HA issue). */
  exportKeyPem(): Promise<string> {
    return exportPrivateKeyPem(this.keys.privateKey);
  }

  /** Valid until, ms since the epoch. */
  get notAfter(): number {
    return this.cert.notAfter.getTime();
  }

  /**
   * Signs a node's CSR into its leaf certificate: CN and a `baton://node/<id>` URI SAN name the
   * node, OU carries the role, the advertise addresses are SANs, and it serves both ends of TLS.
   */
  async signNodeCsr(req: SignNodeCsrRequest): Promise<IssuedNodeCert> {
    const csr = await parseCsr(req.csrPem);
    const nodeId = csr.subjectName.getField("CN")[0] ?? "";
    if (!isValidNodeId(nodeId))
      throw new BatonError("VALIDATION_FAILED", "CSR must name the node id in its CN", [{ path: ["csr", "CN"], problem: `"${nodeId}" is not a node id` }]);
    if (req.expectNodeId !== undefined && req.expectNodeId !== nodeId)
      throw new BatonError("VALIDATION_FAILED", `CSR names node ${nodeId}, expected ${req.expectNodeId}`, [{ path: ["csr", "CN"], problem: "node id mismatch" }]);

    const sans: x509.JsonGeneralName[] = [{ type: "url", value: nodeUri(nodeId) }];
    for (const addr of req.addresses ?? []) sans.push({ type: isIP(addr) ? "ip" : "dns", value: addr });

    const now = this.deps.clock.now();
    const serial = newSerialNumber();
    const notAfter = now + (req.validityMs ?? defaultNodeCertValidityMs);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: [{ CN: [nodeId] }, { OU: [req.role] }, { O: ["baton"] }],
      issuer: this.cert.subject,
      notBefore: new Date(now - certBackdateMs),
      notAfter: new Date(notAfter),
      publicKey: csr.publicKey,
      signingKey: this.keys.privateKey,
      signingAlgorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension(sans),
        await x509.AuthorityKeyIdentifierExtension.create(this.keys.publicKey),
        await x509.SubjectKeyIdentifierExtension.create(csr.publicKey),
      ],
    });
    return { nodeId, role: req.role, serial, certPem: cert.toString("pem"), notAfter };
  }
}

async function parseCsr(pem: string): Promise<x509.Pkcs10CertificateRequest> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch (err) {
    throw new BatonError("VALIDATION_FAILED", "CSR is not a PEM PKCS#10 request", [{ path: ["csr"], problem: "unparseable" }], { cause: err });
  }
  const alg = csr.publicKey.algorithm as EcKeyAlgorithm;
  if (alg.name !== keyAlgorithm.name || alg.namedCurve !== keyAlgorithm.namedCurve)
    throw new BatonError("VALIDATION_FAILED", "CSR key must be ECDSA P-256", [{ path: ["csr", "publicKey"], problem: `${alg.name} ${alg.namedCurve ?? ""}`.trim() }]);
  // The signature proves the requester holds the private key of the public key it asks us to certify.
  if (!(await csr.verify())) throw new BatonError("VALIDATION_FAILED", "CSR signature does not verify", [{ path: ["csr"], problem: "bad signature" }]);
  return csr;
}
