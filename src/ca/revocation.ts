import { normalizeSerial } from "./node-cert.js";

/** The stored form of a revocation list. */
export interface RevocationListJson {
  nodeIds: string[];
  serials: string[];
}

/**
 * Node ids and certificate serials the cluster no longer accepts. `node rm` revokes the node id
 * (every certificate it ever had, renewals included); a serial revokes one certificate (a
 * leaked key of a node that stays). Entries are never removed: node ids are not reused.
 */
export class RevocationList {
  private readonly nodeIds = new Set<string>();
  private readonly serials = new Set<string>();

  static fromJSON(json: RevocationListJson): RevocationList {
    const list = new RevocationList();
    for (const id of json.nodeIds) list.revokeNode(id);
    for (const s of json.serials) list.revokeSerial(s);
    return list;
  }

  revokeNode(nodeId: string): void {
    this.nodeIds.add(nodeId);
  }

  revokeSerial(serial: string): void {
    this.serials.add(normalizeSerial(serial));
  }

  isRevoked(cert: { nodeId: string; serial: string }): boolean {
    return this.nodeIds.has(cert.nodeId) || this.serials.has(normalizeSerial(cert.serial));
  }

  toJSON(): RevocationListJson {
    return { nodeIds: [...this.nodeIds].sort(), serials: [...this.serials].sort() };
  }
}
