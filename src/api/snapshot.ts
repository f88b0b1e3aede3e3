import type { FastifyPluginAsync } from "fastify";
import { BatonError } from "../lib/errors.js";
import type { ApiDeps } from "./deps.js";

/** The header carrying the revision a store snapshot holds. */
export const SNAPSHOT_REVISION_HEADER = "x-baton-revision";

/** `baton ha snapshot save` and `baton ha members`: the etcd store's snapshot and members. */
export const snapshotRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  app.get("/store/snapshot", { schema: { tags: ["system"], summary: "A snapshot of the etcd store (application/octet-stream), for `etcdctl snapshot restore`" } }, async (_req, reply) => {
    if (!deps.snapshot)
      throw new BatonError("BAD_REQUEST", `this manager's store is ${String(deps.system.info().store ?? "sqlite")}, not etcd: back up DIR/store.db instead (see docs/ha.md, Backup and restore)`);
    const snap = await deps.snapshot();
    deps.log.info({ revision: snap.revision }, "store snapshot requested");
    return reply.header("content-type", "application/octet-stream").header(SNAPSHOT_REVISION_HEADER, String(snap.revision)).send(snap.stream);
  });
  app.get("/store/members", { schema: { tags: ["system"], summary: "The etcd store's members with their health (id, name, URLs, learner, leader)" } }, async () => {
    if (!deps.etcdMembers) throw new BatonError("BAD_REQUEST", `this manager's store is ${String(deps.system.info().store ?? "sqlite")}, not etcd: it has no members`);
    return deps.etcdMembers();
  });
};
