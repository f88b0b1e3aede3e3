import type { ClusterCa } from "./ca.js";
import type { JoinTokens } from "./join-token.js";
import { verifyCaMatchesToken } from "./join-token.js";
import { createNodeKeyAndCsr, readNodeCert, type NodeCredentials } from "./node-cert.js";
import { isNodeRole, type NodeRole } from "./role.js";
import { BatonError } from "../lib/errors.js";

/** What a joining node sends once it trusts the manager's CA. */
export interface JoinRequest {
  token: string;
  csrPem: string;
  /** Addresses the node advertises (become SANs of its certificate). */
  addresses?: string[];
  /** Asking for "manager" with a worker token is refused; by default the token decides. */
  requestedRole?: NodeRole;
}

export interface JoinResponse {
  certPem: string;
  caCertPem: string;
  role: NodeRole;
  /**
   * A manager join only (over the TLS connection that proved the CA, as Swarm hands its
   * managers the CA key): what makes the node a manager (src/cluster/manager-material.ts).
   */
  manager?: ManagerMaterial;
}

/** PEMs of a TLS connection to etcd (the same shape as the store's EtcdTls). */
export interface EtcdTlsPems {
  caCertPem: string;
  certPem?: string;
  keyPem?: string;
}

/**
 * What a manager hands a node that becomes a manager (a manager join, a promotion): the cluster
 * CA key, so it can sign certificates when it leads; every manager's address; the store (a
 * user's etcd by URL with its TLS PEMs, or the managed etcd's CA and members); the cluster's
 * heartbeat timing, so every manager judges nodes alike.
 */
export interface ManagerMaterial {
  caKeyPem: string;
  managers: string[];
  /** `etcd://host:port,…`: the user's etcd (absent on a managed etcd). */
  store?: string;
  /** TLS to the user's etcd, when the first manager reaches it over TLS. */
  etcdTls?: EtcdTlsPems;
  /** `baton init --ha`: the etcd CA (the joiner issues its member certificate) and the members' client URLs. */
  managedEtcd?: { caCertPem: string; caKeyPem: string; members: string[] };
  heartbeatPeriodMs?: number;
  heartbeatGraceMs?: number;
}

/**
 * How the joining node reaches a manager; the lead implements it over the session transport.
 * `fetchCaCert` runs over a connection that is not yet trusted (the CA is what it fetches);
 * `requestCertificate` only after the CA matched the token, on a connection that trusts it.
 */
export interface JoinTransport {
  fetchCaCert(): Promise<string>;
  requestCertificate(req: JoinRequest, trustedCaCertPem: string): Promise<JoinResponse>;
}

/**
 * The joining node's side: pin the CA named by the token, make a key and a CSR, exchange the
 * token for a certificate. The secret is never sent to a manager whose CA does not match.
 */
export async function joinWithToken(
  args: { token: string; nodeId: string; addresses?: string[]; requestedRole?: NodeRole },
  transport: JoinTransport,
): Promise<NodeCredentials & { role: NodeRole; manager?: JoinResponse["manager"] }> {
  const caCertPem = await transport.fetchCaCert();
  verifyCaMatchesToken(caCertPem, args.token);
  const { keyPem, csrPem } = await createNodeKeyAndCsr(args.nodeId);
  const res = await transport.requestCertificate(
    { token: args.token, csrPem, addresses: args.addresses, requestedRole: args.requestedRole },
    caCertPem,
  );
  const info = readNodeCert(res.certPem);
  if (!isNodeRole(info.role) || info.nodeId !== args.nodeId) throw new BatonError("UNAUTHORIZED", "the manager issued a certificate that is not this node's");
  return { caCertPem, certPem: res.certPem, keyPem, role: info.role, ...(res.manager ? { manager: res.manager } : {}) };
}

/** The manager's side: the token decides the role, the CA signs the CSR with it. */
export async function acceptJoin(
  req: JoinRequest,
  deps: { ca: ClusterCa; tokens: JoinTokens; isRevoked?: (nodeId: string) => boolean; isInUse?: (nodeId: string) => boolean },
): Promise<JoinResponse> {
  const role = deps.tokens.authorize(req.token, req.requestedRole);
  const issued = await deps.ca.signNodeCsr({ csrPem: req.csrPem, role, addresses: req.addresses });
  // A removed node's id stays refused, and a token does not let anyone take over a live node's id.
  if (deps.isRevoked?.(issued.nodeId))
    throw new BatonError("FORBIDDEN", `node id ${issued.nodeId} was removed from this cluster; join with a fresh data dir`, [{ path: ["csr", "CN"], problem: "revoked" }]);
  if (deps.isInUse?.(issued.nodeId))
    throw new BatonError("FORBIDDEN", `node id ${issued.nodeId} belongs to a node that is up`, [{ path: ["csr", "CN"], problem: "in use" }]);
  return { certPem: issued.certPem, caCertPem: deps.ca.certPem, role };
}
