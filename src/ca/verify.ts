import { X509Certificate } from "node:crypto";
import type { PeerCertificate } from "node:tls";
import type { Clock } from "../lib/clock.js";
import { BatonError } from "../lib/errors.js";
import { readNodeCert } from "./node-cert.js";
import type { RevocationList } from "./revocation.js";
import type { CertRole } from "./role.js";

/** Who is on the other end of a verified session. */
export interface PeerIdentity {
  nodeId: string;
  role: CertRole;
  serial: string;
  notAfter: number;
}

export interface PeerVerifierDeps {
  /** The cluster CA certificate: the only trust anchor. */
  caCertPem: string;
  clock: Clock;
  /** Consulted on every verification, so a revocation applies to the next handshake. */
  revocations: RevocationList;
}

export interface VerifyPeerOptions {
  /** Refuse a peer of another role (a worker's session must end at a manager). */
  requireRole?: CertRole;
}

/**
 * A peer's certificate as node:tls hands it over (`getPeerCertificate()`, or the `cert` of
 * `checkServerIdentity`), a node:crypto X509Certificate, DER bytes or PEM.
 */
export type PeerCertInput = PeerCertificate | X509Certificate | Uint8Array | string;

/** Why a peer was refused; in the error's field problem under ["peer"]. */
export type PeerRefusal = "no-certificate" | "untrusted" | "not-yet-valid" | "expired" | "not-a-node" | "revoked" | "wrong-role";

/** A peer that is not who it must be: 401, or 403 when it is a node of the wrong role. */
function refuse(reason: PeerRefusal, message: string): BatonError {
  return new BatonError(reason === "wrong-role" ? "FORBIDDEN" : "UNAUTHORIZED", message, [{ path: ["peer"], problem: reason }]);
}

function leafOf(peer: PeerCertInput): X509Certificate {
  if (peer instanceof X509Certificate) return peer;
  if (typeof peer === "string" || peer instanceof Uint8Array) return new X509Certificate(peer);
  // node:tls gives {} when the peer sent no certificate.
  if (!peer.raw) throw refuse("no-certificate", "peer presented no certificate");
  return new X509Certificate(peer.raw);
}

/**
 * Checks a peer certificate against the cluster: signed directly by the cluster CA (Baton has
 * no intermediates, so anything the peer sends beyond its leaf is ignored), valid at the
 * injected clock's now, naming a node and its role, and not revoked. Synchronous, so it fits
 * `checkServerIdentity` and a server's `secureConnection` handler alike.
 */
export function verifyPeer(peer: PeerCertInput, deps: PeerVerifierDeps, opts: VerifyPeerOptions = {}): PeerIdentity {
  const ca = new X509Certificate(deps.caCertPem);
  let leaf: X509Certificate;
  try {
    leaf = leafOf(peer);
  } catch (err) {
    if (err instanceof BatonError) throw err;
    throw refuse("untrusted", "peer certificate is not an X.509 certificate");
  }
  if (leaf.ca || !leaf.checkIssued(ca) || !leaf.verify(ca.publicKey))
    throw refuse("untrusted", "peer certificate is not issued by this cluster's CA");

  const now = deps.clock.now();
  if (now < leaf.validFromDate.getTime()) throw refuse("not-yet-valid", `peer certificate is not valid before ${leaf.validFromDate.toISOString()}`);
  if (now > leaf.validToDate.getTime()) throw refuse("expired", `peer certificate expired at ${leaf.validToDate.toISOString()}`);

  let info;
  try {
    info = readNodeCert(leaf.raw);
  } catch (err) {
    throw refuse("not-a-node", err instanceof Error ? err.message : "peer certificate names no node");
  }
  if (deps.revocations.isRevoked(info)) throw refuse("revoked", `node ${info.nodeId} has been removed from the cluster`);
  if (opts.requireRole && info.role !== opts.requireRole)
    throw refuse("wrong-role", `peer ${info.nodeId} is a ${info.role}, expected a ${opts.requireRole}`);
  return { nodeId: info.nodeId, role: info.role, serial: info.serial, notAfter: info.notAfter };
}
