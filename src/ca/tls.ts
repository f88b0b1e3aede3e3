import type { ConnectionOptions, PeerCertificate, TLSSocket, TlsOptions } from "node:tls";
import { BatonError } from "../lib/errors.js";
import type { NodeCredentials } from "./node-cert.js";
import { verifyPeer, type PeerIdentity, type PeerVerifierDeps, type VerifyPeerOptions } from "./verify.js";

/**
 * Server options for a node session or the TCP API: the cluster CA is the only trust anchor
 * (Node's default roots are replaced, not extended), a client certificate is required, TLS 1.3 only.
 * OpenSSL checks chain and validity on the wall clock; verifyTlsPeer adds revocation and role.
 */
export function serverTlsOptions(creds: NodeCredentials): TlsOptions {
  return {
    ca: [creds.caCertPem],
    cert: creds.certPem,
    key: creds.keyPem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
  };
}

/**
 * Client options: present our certificate, trust only the cluster CA, and accept the server
 * by its node certificate (verifyPeer) instead of a hostname: managers are reached by address
 * and their identity is the node id, role and revocation state, not a DNS name.
 */
export function clientTlsOptions(creds: NodeCredentials, deps: PeerVerifierDeps, opts: VerifyPeerOptions = {}): ConnectionOptions {
  return {
    ca: [creds.caCertPem],
    cert: creds.certPem,
    key: creds.keyPem,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
    checkServerIdentity: (_host: string, cert: PeerCertificate): Error | undefined => {
      try {
        verifyPeer(cert, deps, opts);
        return undefined;
      } catch (err) {
        return err instanceof Error ? err : new Error(String(err));
      }
    },
  };
}

/**
 * For a server's `secureConnection` handler: the peer's identity, or the socket destroyed and
 * the refusal thrown. Revocation is checked here because OpenSSL knows nothing of it.
 */
export function verifyTlsPeer(socket: TLSSocket, deps: PeerVerifierDeps, opts: VerifyPeerOptions = {}): PeerIdentity {
  try {
    if (!socket.authorized) throw new BatonError("UNAUTHORIZED", `peer not authorized: ${String(socket.authorizationError)}`, [{ path: ["peer"], problem: "untrusted" }]);
    return verifyPeer(socket.getPeerCertificate(), deps, opts);
  } catch (err) {
    socket.destroy();
    throw err;
  }
}
