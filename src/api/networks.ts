import type { FastifyPluginAsync } from "fastify";
import { Type } from "@sinclair/typebox";
import { BatonError } from "../lib/errors.js";
import { newId } from "../lib/ids.js";
import { ErrorBody, NetworkCreateInput, VolumeCreateInput } from "../input/schemas.js";
import type { ApiDeps } from "./deps.js";
import { findNamed } from "./lookup.js";
import { refuseWhileUsed, servicesUsing } from "./attachments.js";

const Ref = Type.Object({ ref: Type.String({ description: "id, name or unique id prefix" }) });
const errors = { 400: ErrorBody, 404: ErrorBody, 409: ErrorBody };

const nameInUse = (kind: string, name: string): BatonError => new BatonError("NAME_IN_USE", `${kind} name "${name}" is already in use`, [{ path: ["name"], problem: `"${name}" is already in use` }]);

/**
 * Networks and volumes: named attachment points of services (docs/networks.md, docs/volumes.md).
 * Names are unique per kind (checked in the write transaction); removal is refused while a
 * service (or the spec it would roll back to) uses one.
 */
export const networksRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { store } = deps;

  app.get("/networks", { schema: { tags: ["networks"], summary: "List networks" } }, () => store.view((tx) => tx.list("networks")).sort((a, b) => a.name.localeCompare(b.name)));

  app.post<{ Body: NetworkCreateInput }>("/networks", { schema: { tags: ["networks"], summary: "Create a network", body: NetworkCreateInput, response: errors } }, async (req, reply) => {
    const b = req.body;
    const created = await store.update((tx) => {
      if (tx.byName("networks", b.name)) throw nameInUse("network", b.name);
      return tx.create("networks", { id: newId(), name: b.name, driver: b.driver ?? "overlay", internal: b.internal ?? false, attachable: b.attachable ?? false, labels: b.labels ?? {} });
    });
    deps.log.info({ networkId: created.id, name: created.name }, "network created");
    return reply.status(201).send(created);
  });

  app.get<{ Params: { ref: string } }>("/networks/:ref", { schema: { tags: ["networks"], summary: "Inspect a network, with the services on it", params: Ref, response: { 404: ErrorBody } } }, (req) =>
    store.view((tx) => {
      const n = findNamed(tx, "networks", req.params.ref);
      return { ...n, services: servicesUsing(tx, { network: n }).map((s) => s.spec.name).sort() };
    }),
  );

  app.delete<{ Params: { ref: string } }>("/networks/:ref", { schema: { tags: ["networks"], summary: "Remove a network (refused while a service uses it)", params: Ref, response: errors } }, async (req) => {
    const removed = await store.update((tx) => {
      const n = findNamed(tx, "networks", req.params.ref);
      refuseWhileUsed("network", n.name, servicesUsing(tx, { network: n }));
      tx.delete("networks", n.id);
      return n;
    });
    deps.log.info({ networkId: removed.id, name: removed.name }, "network removed");
    return { id: removed.id, name: removed.name };
  });

  app.get("/volumes", { schema: { tags: ["volumes"], summary: "List volumes" } }, () => store.view((tx) => tx.list("volumes")).sort((a, b) => a.name.localeCompare(b.name)));

  app.post<{ Body: VolumeCreateInput }>("/volumes", { schema: { tags: ["volumes"], summary: "Create a volume", body: VolumeCreateInput, response: errors } }, async (req, reply) => {
    const b = req.body;
    const created = await store.update((tx) => {
      if (tx.byName("volumes", b.name)) throw nameInUse("volume", b.name);
      return tx.create("volumes", { id: newId(), name: b.name, driver: b.driver ?? "local", labels: b.labels ?? {} });
    });
    deps.log.info({ volumeId: created.id, name: created.name }, "volume created");
    return reply.status(201).send(created);
  });

  app.get<{ Params: { ref: string } }>("/volumes/:ref", { schema: { tags: ["volumes"], summary: "Inspect a volume, with the services using it", params: Ref, response: { 404: ErrorBody } } }, (req) =>
    store.view((tx) => {
      const v = findNamed(tx, "volumes", req.params.ref);
      return { ...v, services: servicesUsing(tx, { volume: v }).map((s) => s.spec.name).sort() };
    }),
  );

  app.delete<{ Params: { ref: string } }>("/volumes/:ref", { schema: { tags: ["volumes"], summary: "Remove a volume (refused while a service uses it); each node then removes its data of it", params: Ref, response: errors } }, async (req) => {
    const removed = await store.update((tx) => {
      const v = findNamed(tx, "volumes", req.params.ref);
      refuseWhileUsed("volume", v.name, servicesUsing(tx, { volume: v }));
      tx.delete("volumes", v.id);
      return v;
    });
    deps.log.info({ volumeId: removed.id, name: removed.name }, "volume removed");
    return { id: removed.id, name: removed.name };
  });
};
