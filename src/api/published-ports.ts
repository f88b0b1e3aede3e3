import { createSocket } from "node:dgram";
import { createServer } from "node:net";
import { MESH_REUSE_PORT } from "../mesh/bind.js";
import type { FieldProblem } from "../lib/errors.js";
import type { PublishedPort, Service } from "../model/objects.js";
import type { ReadTx } from "../store/store.js";
import { portSpace as space, publishedPortKey } from "../store/unique-keys.js";

/**
 * Published ports another service already has: each a problem naming the field and the service.
 * Read from the store's index of published ports (store/unique-keys.ts), which the store checks
 * again at commit: on etcd across managers, as one key per port.
 */
export function portConflicts(tx: ReadTx, ports: PublishedPort[], self?: string): FieldProblem[] {
  const problems: FieldProblem[] = [];
  ports.forEach((p, i) => {
    const other = p.published !== undefined ? (tx.claimedBy(publishedPortKey(p)) as Service | undefined) : undefined;
    if (other && other.id !== self) problems.push({ path: ["publish", i, "published"], problem: `${p.published} is already published by service "${other.spec.name}"` });
  });
  return problems;
}

/**
 * Published ports a program outside Baton holds on this host (the mesh could not listen there):
 * tried by binding each one for a moment. Ports Baton itself already serves are not asked.
 */
export async function portsInUseOnHost(ports: PublishedPort[], ownedByBaton: ReadonlySet<string>): Promise<FieldProblem[]> {
  const problems: FieldProblem[] = [];
  await Promise.all(
    ports.map(async (p, i) => {
      if (p.published === undefined || ownedByBaton.has(`${p.published}/${space(p)}`)) return;
      const err = await tryBind(p.published, space(p));
      if (err === "EADDRINUSE") problems.push({ path: ["publish", i, "published"], problem: `${p.published}/${space(p)} is in use on this host by a program outside Baton` });
      else if (err === "EACCES") problems.push({ path: ["publish", i, "published"], problem: `${p.published} is a privileged port: Baton must run as root (or with CAP_NET_BIND_SERVICE) to publish it` });
    }),
  );
  return problems;
}

/** The ports Baton's services publish, as `port/space` keys. */
export function publishedByBaton(tx: ReadTx): Set<string> {
  const out = new Set<string>();
  for (const s of tx.list("services")) for (const p of s.spec.endpoint.ports) if (p.published !== undefined) out.add(`${p.published}/${space(p)}`);
  return out;
}

function tryBind(port: number, kind: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    if (kind === "udp") {
      const sock = createSocket({ type: "udp4", reusePort: MESH_REUSE_PORT });
      sock.once("error", (e: NodeJS.ErrnoException) => resolve(e.code));
      sock.bind({ port, address: "0.0.0.0", exclusive: true }, () => sock.close(() => resolve(undefined)));
      return;
    }
    const srv = createServer();
    srv.once("error", (e: NodeJS.ErrnoException) => resolve(e.code));
    // As the mesh binds (SO_REUSEPORT): a service address of the same port is not a holder.
    srv.listen({ port, host: "0.0.0.0", exclusive: true, reusePort: MESH_REUSE_PORT }, () => srv.close(() => resolve(undefined)));
  });
}
