import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import type { TLSSocket } from "node:tls";
import { Type } from "@sinclair/typebox";
import type { JoinRequest, JoinResponse } from "../ca/join.js";
import type { NodeRole } from "../ca/role.js";
import { verifyPeer, type PeerIdentity, type PeerVerifierDeps } from "../ca/verify.js";
import { BatonError } from "../lib/errors.js";
import { ErrorBody } from "../input/schemas.js";
import type { Cluster } from "../model/objects.js";
import type { ApiDeps } from "./deps.js";

/** What the API needs of cluster membership (a manager started with `baton init`). */
export interface ClusterControl {
  readonly caCertPem: string;
  readonly verifier: PeerVerifierDeps;
  token(role: NodeRole): string;
  rotate(role: NodeRole): Promise<string>;
  join(req: JoinRequest): Promise<JoinResponse>;
  renew(peer: PeerIdentity, peerCert: Uint8Array, csrPem: string): Promise<JoinResponse>;
  /** A promoted worker's manager certificate and the manager material. */
  promote(peer: PeerIdentity, peerCert: Uint8Array, csrPem: string): Promise<JoinResponse>;
  issueClientCertificate(csrPem: string): Promise<{ certPem: string; caCertPem: string; serial: string; notAfter: number }>;
  /** Addresses of the managers' session and API listeners (host:port). */
  managers(): string[];
  /** The cluster record with the node's id revoked (for node rm's transaction). */
  revokeNodeIn(rec: Cluster, nodeId: string): Cluster;
  /** Ends a removed node's session (it is told not to reconnect). */
  disconnect(nodeId: string, message: string): void;
}

/** The routes a node reaches before it has a certificate: they need none. */
export const ANONYMOUS_ROUTES = new Set(["GET /v1/join/ca", "POST /v1/join"]);

export function requireCluster(deps: ApiDeps): ClusterControl {
  if (!deps.cluster) throw new BatonError("BAD_REQUEST", "this node is not part of a cluster: start it with `baton init --advertise-addr ADDR` to make it the first manager");
  return deps.cluster;
}

/** The verified identity of the client certificate on this request's connection (TCP API only). */
export function peerOf(req: FastifyRequest, verifier: PeerVerifierDeps): { peer: PeerIdentity; raw: Uint8Array } {
  const socket = req.raw.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== "function" || !socket.authorized)
    throw new BatonError("UNAUTHORIZED", "a client certificate of this cluster is required", [{ path: ["peer"], problem: "no-certificate" }]);
  const cert = socket.getPeerCertificate();
  return { peer: verifyPeer(cert, verifier), raw: cert.raw };
}

const Role = Type.Object({ role: Type.String({ enum: ["worker", "manager"] }) });
const Csr = Type.Object({ csrPem: Type.String({ minLength: 1, maxLength: 16_384 }) }, { additionalProperties: false });
const JoinBody = Type.Object(
  {
    token: Type.String({ minLength: 1, maxLength: 200 }),
    csrPem: Type.String({ minLength: 1, maxLength: 16_384 }),
    addresses: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { maxItems: 16 })),
    requestedRole: Type.Optional(Type.String({ enum: ["worker", "manager"] })),
  },
  { additionalProperties: false },
);

export const clusterRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  app.get<{ Params: { role: NodeRole } }>(
    "/cluster/join-tokens/:role",
    { schema: { tags: ["cluster"], summary: "The current join token of a role", params: Role, response: { 400: ErrorBody } } },
    (req) => ({ role: req.params.role, token: requireCluster(deps).token(req.params.role) }),
  );
  app.post<{ Params: { role: NodeRole } }>(
    "/cluster/join-tokens/:role/rotate",
    { schema: { tags: ["cluster"], summary: "Replace a role's join token: the old one stops working for new joins", params: Role, response: { 400: ErrorBody } } },
    async (req) => ({ role: req.params.role, token: await requireCluster(deps).rotate(req.params.role) }),
  );
  app.get("/cluster", { schema: { tags: ["cluster"], summary: "The cluster's CA certificate and managers" } }, () => {
    const c = requireCluster(deps);
    return { caCertPem: c.caCertPem, managers: c.managers() };
  });
  app.post<{ Body: { csrPem: string } }>(
    "/certs",
    { schema: { tags: ["cluster"], summary: "Sign a CSR into a client certificate for the remote CLI (30 days)", body: Csr, response: { 400: ErrorBody } } },
    (req) => requireCluster(deps).issueClientCertificate(req.body.csrPem),
  );

  app.post("/leave", { schema: { tags: ["cluster"], summary: "Only workers leave; on a manager this is refused" } }, () => {
    throw new BatonError(
      "BAD_REQUEST",
      deps.cluster
        ? "this node is a manager and cannot leave the cluster: `baton node demote` it from a manager first (it becomes a worker), then `baton leave`; `baton down` only stops it"
        : "this node is not part of a cluster: there is nothing to leave (`baton down` stops it)",
    );
  });

  // Joining: no certificate yet. The CA is shown to anyone (the joining node checks it against
  // its token before it sends the secret); a certificate is issued only for a valid token.
  app.get("/join/ca", { schema: { tags: ["join"], summary: "The cluster CA certificate (PEM), for a joining node to check against its token" } }, (_req, reply) =>
    reply.type("application/x-pem-file").send(requireCluster(deps).caCertPem),
  );
  app.post<{ Body: JoinRequest }>(
    "/join",
    { schema: { tags: ["join"], summary: "Exchange a join token and a CSR for a node certificate", body: JoinBody, response: { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody } } },
    (req) => requireCluster(deps).join(req.body),
  );
  app.post<{ Body: { csrPem: string } }>(
    "/join/promote",
    { schema: { tags: ["join"], summary: "A promoted worker exchanges its worker certificate and a CSR for a manager certificate and what a manager needs", body: Csr, response: { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody } } },
    (req) => {
      const c = requireCluster(deps);
      const { peer, raw } = peerOf(req, c.verifier);
      return c.promote(peer, raw, req.body.csrPem);
    },
  );
  app.post<{ Body: { csrPem: string } }>(
    "/join/renew",
    { schema: { tags: ["join"], summary: "Renew the calling node's certificate (same id and role)", body: Csr, response: { 400: ErrorBody, 401: ErrorBody } } },
    (req) => {
      const c = requireCluster(deps);
      const { peer, raw } = peerOf(req, c.verifier);
      return c.renew(peer, raw, req.body.csrPem);
    },
  );
};
