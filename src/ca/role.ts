/** A node's role in the cluster; recorded in its certificate's OU and granted by the join token it used. */
export type NodeRole = "worker" | "manager";

export const nodeRoles: readonly NodeRole[] = ["worker", "manager"];

export const isNodeRole = (v: unknown): v is NodeRole => v === "worker" || v === "manager";

/**
 * What a certificate of the cluster may be: a node's (worker, manager), or a user's for the
 * remote CLI (client: the API only, never a node session). Join tokens grant node roles only.
 */
export type CertRole = NodeRole | "client";

export const isCertRole = (v: unknown): v is CertRole => isNodeRole(v) || v === "client";

/** The URI SAN naming a node in its certificate. */
export const nodeUri = (nodeId: string): string => `baton://node/${nodeId}`;

/** Node ids as src/lib/ids.ts makes them (25 lowercase alphanumerics); a little looser for tests and hand-made ids. */
export const isValidNodeId = (id: string): boolean => /^[a-z0-9][a-z0-9-]{0,63}$/.test(id);
