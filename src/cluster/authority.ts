import { join } from "node:path";
import { ClusterCa } from "../ca/ca.js";
import { acceptJoin, type JoinRequest, type JoinResponse } from "../ca/join.js";
import { JoinTokens } from "../ca/join-token.js";
import { createNodeKeyAndCsr, loadNodeCredentials, needsRenewal, readNodeCert, saveNodeCredentials, type NodeCredentials } from "../ca/node-cert.js";
import { RevocationList } from "../ca/revocation.js";
import type { PeerIdentity, PeerVerifierDeps } from "../ca/verify.js";
import { isNodeRole, type NodeRole } from "../ca/role.js";
import { sealingKey } from "../ca/seal.js";
import type { Clock } from "../lib/clock.js";
import { BatonError } from "../lib/errors.js";
import { CLUSTER_ID, type Cluster } from "../model/objects.js";
import type { Store, Watch } from "../store/store.js";

/** Where a manager keeps the CA and every node its own credentials, under the data dir. */
export const caDir = (dataDir: string): string => join(dataDir, "ca");
export const certsDir = (dataDir: string): string => join(dataDir, "certs");

/** Client certificates for the remote CLI live shorter than node certificates: nobody renews them. */
const CLIENT_CERT_VALIDITY_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * The manager's side of cluster membership: the CA, the join tokens and the revocations (kept in
 * the store's cluster record, so every manager sees the same), and the manager's own node
 * certificate. Everything a join, a renewal, `join-token` and `node rm` need.
 */
export class ClusterAuthority {
  /** Live: `node rm` adds to it and the next handshake is refused. */
  readonly revocations: RevocationList;
  private watch: Watch | undefined;

  private constructor(
    readonly ca: ClusterCa,
    private readonly sealKey: Buffer,
    private readonly store: Store,
    private readonly clock: Clock,
    /** This manager's own node credentials. */
    public credentials: NodeCredentials,
  ) {
    this.revocations = RevocationList.fromJSON(this.record().revocations);
    // Another writer (a second manager, later) may revoke too: follow the record.
    this.watch = store.watch(store.revision(), (events) => {
      for (const e of events) {
        if (e.kind !== "clusters" || e.op === "delete") continue;
        const { nodeIds, serials } = (e.object as Cluster).revocations;
        for (const id of nodeIds) this.revocations.revokeNode(id);
        // A demoted manager's manager certificate (its node id stays: it is a worker now).
        for (const s of serials) this.revocations.revokeSerial(s);
      }
    });
  }

  /**
   * `baton init`: the CA of the data dir (created at first start), the cluster record in the
   * store (created with fresh tokens at first start), and this node's certificate as a manager.
   * Returns the plain tokens when they were just created, so init can print the join command.
   */
  static async open(args: { dataDir: string; store: Store; clock: Clock; nodeId: string; addresses: string[] }): Promise<{ authority: ClusterAuthority; created: boolean }> {
    const { store, clock } = args;
    const ca = await ClusterCa.loadOrCreate(caDir(args.dataDir), { clock });
    const sealKey = sealingKey(await ca.exportKeyPem(), "join-tokens");
    let created = false;
    const existing = store.view((tx) => tx.get("clusters", CLUSTER_ID));
    if (existing && existing.caCertPem !== ca.certPem)
      throw new BatonError("VALIDATION_FAILED", `the store's cluster has another CA than ${caDir(args.dataDir)}: the data dir is not consistent`);
    if (!existing) {
      const { tokens } = JoinTokens.create({ clock, caCertPem: ca.certPem, sealKey });
      await store.update((tx) => tx.create("clusters", { id: CLUSTER_ID, caCertPem: ca.certPem, joinTokens: tokens.toJSON(), revocations: { nodeIds: [], serials: [] } }));
      created = true;
    }
    const credentials = await ensureOwnCertificate(ca, { dataDir: args.dataDir, nodeId: args.nodeId, addresses: args.addresses, clock });
    return { authority: new ClusterAuthority(ca, sealKey, store, clock, credentials), created };
  }

  close(): void {
    this.watch?.cancel();
  }

  get verifier(): PeerVerifierDeps {
    return { caCertPem: this.ca.certPem, clock: this.clock, revocations: this.revocations };
  }

  /** The current join token of a role, as `baton join-token` prints it. */
  token(role: NodeRole): string {
    return this.tokens().plain(role);
  }

  /** A new token for the role; the old one stops working for new joins at once. */
  async rotate(role: NodeRole): Promise<string> {
    return this.store.update((tx) => {
      const rec = tx.get("clusters", CLUSTER_ID)!;
      const tokens = JoinTokens.fromJSON(rec.joinTokens, this.tokenDeps());
      const plain = tokens.rotate(role);
      tx.update("clusters", { ...rec, joinTokens: tokens.toJSON() });
      return plain;
    });
  }

  /** A node exchanges its token and CSR for a certificate (the node's role is the token's). */
  join(req: JoinRequest): Promise<JoinResponse> {
    return acceptJoin(req, {
      ca: this.ca,
      tokens: this.tokens(),
      isRevoked: (id) => this.revocations.isRevoked({ nodeId: id, serial: "" }),
      isInUse: (id) => this.store.view((tx) => tx.get("nodes", id)?.status.state === "ready"),
    });
  }

  /** Every manager's address, as kept in the cluster record (the first manager's when none yet). */
  managers(): string[] {
    return this.record().managers ?? [];
  }

  /** Adds a manager's address to the cluster record (idempotent; retried on a conflict). */
  async addManager(addr: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.store.update((tx) => {
          const rec = tx.get("clusters", CLUSTER_ID)!;
          if (rec.managers?.includes(addr)) return;
          tx.update("clusters", { ...rec, managers: [...(rec.managers ?? []), addr] });
        });
        return;
      } catch (err) {
        if (!(err instanceof BatonError) || err.code !== "VERSION_CONFLICT" || attempt >= 5) throw err;
      }
    }
  }

  /**
   * This manager steps down (`baton node demote`): a worker certificate for itself, signed while
   * it still holds the CA; its manager certificate revoked (no longer accepted as a manager by
   * any manager) and its address dropped from the managers, in one write to the cluster record.
   */
  async stepDown(nodeId: string, self: string, addresses: string[]): Promise<NodeCredentials> {
    const { keyPem, csrPem } = await createNodeKeyAndCsr(nodeId);
    const issued = await this.ca.signNodeCsr({ csrPem, role: "worker", expectNodeId: nodeId, addresses });
    const serial = readNodeCert(this.credentials.certPem).serial;
    await this.store.update((tx) => {
      const rec = tx.get("clusters", CLUSTER_ID)!;
      tx.update("clusters", {
        ...rec,
        revocations: { ...rec.revocations, serials: [...new Set([...rec.revocations.serials, serial])].sort() },
        managers: (rec.managers ?? []).filter((m) => m !== self),
      });
    });
    this.revocations.revokeSerial(serial);
    return { caCertPem: this.ca.certPem, certPem: issued.certPem, keyPem };
  }

  /** The CA key in PEM, for a joining manager only (it signs certificates when it leads). */
  caKeyPem(): Promise<string> {
    return this.ca.exportKeyPem();
  }

  /** A node renews its certificate over its authenticated connection: same id, same role. */
  async renew(peer: PeerIdentity, peerCert: Uint8Array, csrPem: string): Promise<JoinResponse> {
    if (!isNodeRole(peer.role)) throw new BatonError("FORBIDDEN", "only nodes renew their certificates here");
    // The new certificate keeps the addresses of the one being renewed.
    const issued = await this.ca.signNodeCsr({ csrPem, role: peer.role, expectNodeId: peer.nodeId, addresses: readNodeCert(peerCert).addresses });
    return { certPem: issued.certPem, caCertPem: this.ca.certPem, role: peer.role };
  }

  /**
   * A promoted worker's manager certificate, over its worker certificate's connection: only for
   * the node the store says was promoted, keeping the addresses its worker certificate had (or
   * the one it registered from). The caller adds the manager material.
   */
  async promote(peer: PeerIdentity, peerCert: Uint8Array, csrPem: string): Promise<JoinResponse> {
    if (peer.role !== "worker") throw new BatonError("FORBIDDEN", `only a worker is promoted (this certificate is a ${peer.role}'s)`);
    const node = this.store.view((tx) => tx.get("nodes", peer.nodeId));
    if (node?.desiredRole !== "manager") throw new BatonError("FORBIDDEN", `node ${peer.nodeId} was not promoted (\`baton node promote\` on a manager)`, [{ path: ["node"], problem: "not promoted" }]);
    const had = readNodeCert(peerCert).addresses;
    const addresses = had.length > 0 ? had : node.status.address ? [node.status.address] : [];
    if (addresses.length === 0) throw new BatonError("BAD_REQUEST", `node ${node.hostname} has no known address: a manager needs one (join it with --advertise-addr)`, [{ path: ["node", "address"], problem: "unknown" }]);
    const issued = await this.ca.signNodeCsr({ csrPem, role: "manager", expectNodeId: peer.nodeId, addresses });
    return { certPem: issued.certPem, caCertPem: this.ca.certPem, role: "manager" };
  }

  /** A certificate for the remote CLI (role client: the API, never a node session). */
  async issueClientCertificate(csrPem: string): Promise<{ certPem: string; caCertPem: string; serial: string; notAfter: number }> {
    const issued = await this.ca.signNodeCsr({ csrPem, role: "client", validityMs: CLIENT_CERT_VALIDITY_MS });
    return { certPem: issued.certPem, caCertPem: this.ca.certPem, serial: issued.serial, notAfter: issued.notAfter };
  }

  /** Refuses the node from its next handshake on (its id, so renewals are refused too). */
  revokeNodeIn(rec: Cluster, nodeId: string): Cluster {
    this.revocations.revokeNode(nodeId);
    const nodeIds = [...new Set([...rec.revocations.nodeIds, nodeId])].sort();
    return { ...rec, revocations: { ...rec.revocations, nodeIds } };
  }

  /** The manager's own certificate, renewed when a third of its life is left. */
  async renewOwnIfDue(dataDir: string, nodeId: string, addresses: string[]): Promise<boolean> {
    if (!needsRenewal(this.credentials.certPem, this.clock.now())) return false;
    this.credentials = await ensureOwnCertificate(this.ca, { dataDir, nodeId, addresses, clock: this.clock });
    return true;
  }

  private record(): Cluster {
    const rec = this.store.view((tx) => tx.get("clusters", CLUSTER_ID));
    if (!rec) throw new BatonError("INTERNAL", "the cluster record is missing from the store");
    return rec;
  }

  private tokens(): JoinTokens {
    return JoinTokens.fromJSON(this.record().joinTokens, this.tokenDeps());
  }

  private tokenDeps(): { clock: Clock; caCertPem: string; sealKey: Buffer } {
    return { clock: this.clock, caCertPem: this.ca.certPem, sealKey: this.sealKey };
  }
}

/** The manager's node certificate: kept while valid and of this CA, re-issued otherwise. */
async function ensureOwnCertificate(ca: ClusterCa, args: { dataDir: string; nodeId: string; addresses: string[]; clock: Clock }): Promise<NodeCredentials> {
  const dir = certsDir(args.dataDir);
  const have = await loadNodeCredentials(dir);
  if (have && have.caCertPem === ca.certPem) {
    const info = readNodeCert(have.certPem);
    const sameAddresses = args.addresses.every((a) => info.addresses.includes(a));
    if (info.nodeId === args.nodeId && info.role === "manager" && sameAddresses && !needsRenewal(info, args.clock.now())) return have;
  }
  const { keyPem, csrPem } = await createNodeKeyAndCsr(args.nodeId);
  const issued = await ca.signNodeCsr({ csrPem, role: "manager", addresses: args.addresses });
  const creds = { caCertPem: ca.certPem, certPem: issued.certPem, keyPem };
  await saveNodeCredentials(dir, creds);
  return creds;
}
