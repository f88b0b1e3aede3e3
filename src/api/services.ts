import type { FastifyPluginAsync } from "fastify";
import { Type } from "@sinclair/typebox";
import { BatonError, validationError, type FieldProblem } from "../lib/errors.js";
import { withNewSpec, withRollback } from "../updater/transitions.js";
import { previewUpdate } from "../updater/dry-run.js";
import { allocateVip } from "../model/service-address.js";
import { serviceEndpoints } from "../dispatcher/endpoints.js";
import type { ServiceEndpoints } from "../dispatcher/protocol.js";
import { portConflicts, portsInUseOnHost, publishedByBaton } from "./published-ports.js";
import { newId } from "../lib/ids.js";
import type { Service, ServiceSpec } from "../model/objects.js";
import { resolveServiceSpec } from "../input/resolve.js";
import { specToInput } from "../input/spec-to-input.js";
import { ErrorBody, ScaleInput, ServiceSpecInput, UpdateServiceInput } from "../input/schemas.js";
import type { ApiDeps } from "./deps.js";
import { findService } from "./lookup.js";
import { missingReferences, type ReferenceLookup } from "../input/file-refs.js";
import type { ReadTx } from "../store/store.js";
import { attachNetworks, createMissingVolumes } from "./attachments.js";
import { rebalanceService } from "./rebalance.js";
import { serviceStatus } from "../model/service-status.js";
import { previewCreate } from "./service-dry-run.js";

/** Secret and config names → ids, as the store holds them now (checked again inside the write). */
const referenceLookup = (tx: ReadTx): ReferenceLookup => (kind, name) => tx.byName(kind, name)?.id;

const DryRunQuery = Type.Object({ dryRun: Type.Optional(Type.String({ enum: ["0", "1", "true", "false"] })) }, { additionalProperties: false });
const Ref = Type.Object({ ref: Type.String({ description: "id, name or unique id prefix" }) });
const errors = { 400: ErrorBody, 404: ErrorBody, 409: ErrorBody };

export const servicesRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { store } = deps;
  const withStatus = (s: Service): Service & { status: ReturnType<typeof serviceStatus>; endpoints: ServiceEndpoints; networks: { id: string; name: string | null }[] } =>
    store.view((tx) => ({
      ...s,
      // Services stored before the input form was kept get theirs derived, so `service update` works on them.
      specInput: s.specInput ?? specToInput(s.spec),
      status: serviceStatus(s, tx.tasksOfService(s.id), tx.list("nodes")),
      endpoints: serviceEndpoints(tx, s),
      // The spec keeps network ids (a network made again under the same name is another one, as
      // in docker's Spec.TaskTemplate.Networks[].Target); this says which networks they are.
      networks: (s.spec.task.networks ?? []).map((id) => ({ id, name: tx.get("networks", id)?.name ?? null })),
    }));

  app.get("/services", { schema: { tags: ["services"], summary: "List services with their replica status" } }, () =>
    store.view((tx) => tx.list("services")).sort((a, b) => a.spec.name.localeCompare(b.spec.name)).map(withStatus),
  );

  app.post<{ Body: ServiceSpecInput; Querystring: { dryRun?: string } }>(
    "/services",
    { schema: { tags: ["services"], summary: "Create a service; with ?dryRun=true every check of a create, every problem at once, and nothing written", body: ServiceSpecInput, querystring: DryRunQuery, response: errors } },
    async (req, reply) => {
      if (req.query.dryRun === "true" || req.query.dryRun === "1") return previewCreate(store, req.body, referenceLookup);
      const resolved = resolveServiceSpec(req.body, store.view(referenceLookup));
      // Network names become ids now (the check is repeated in the write: a network may go meanwhile).
      const spec = store.view((tx) => attachNetworks(tx, resolved));
      const onHost = await portsInUseOnHost(spec.endpoint.ports, store.view(publishedByBaton));
      if (onHost.length) throw validationError(onHost);
      // Written (fsynced) before the answer: an acknowledged create is never lost.
      const created = await retryTakenVip(() => store.update((tx) => {
        if (tx.serviceByName(spec.name)) {
          throw new BatonError("NAME_IN_USE", `service name "${spec.name}" is already in use`, [{ path: ["name"], problem: `"${spec.name}" is already in use` }]);
        }
        const conflicts = [...portConflicts(tx, spec.endpoint.ports), ...missingReferences(spec.task, (kind, id) => !!tx.get(kind, id))];
        if (conflicts.length) throw validationError(conflicts);
        // The ids chosen before the write must still exist (a network removed meanwhile is refused).
        attachNetworks(tx, spec);
        createMissingVolumes(tx, spec);
        const vip = spec.endpoint.ports.length && spec.endpoint.mode !== "dnsrr" ? allocateVip(spec.name, new Set(tx.list("services").flatMap((s) => (s.vip ? [s.vip] : [])))) : undefined;
        return tx.create("services", { id: newId(), spec, specInput: req.body, specVersion: 1, ...(vip ? { vip } : {}) });
      }));
      deps.log.info({ serviceId: created.id, name: spec.name }, "service created");
      return reply.status(201).send(created);
    },
  );

  app.post<{ Params: { ref: string }; Body: UpdateServiceInput }>(
    "/services/:ref/update",
    { schema: { tags: ["services"], summary: "Change a service's spec (the whole input form, with the version it was read at); a rolling update follows", params: Ref, body: UpdateServiceInput, response: errors } },
    async (req) => {
      const current = store.view((tx) => findService(tx, req.params.ref));
      const { version, spec: input, force } = req.body;
      // Paths are relative to the body, as the schema's are: spec.update.delay, spec.publish[1]…
      const inSpec = (fields: FieldProblem[]): FieldProblem[] => fields.map((f) => ({ ...f, path: ["spec", ...f.path] }));
      let spec: ServiceSpec;
      try {
        const resolved = resolveServiceSpec(input, store.view(referenceLookup));
        spec = store.view((tx) => attachNetworks(tx, resolved));
      } catch (err) {
        if (err instanceof BatonError && err.code === "VALIDATION_FAILED") throw validationError(inSpec(err.fields));
        throw err;
      }
      const problems: FieldProblem[] = [];
      if (spec.name !== current.spec.name) problems.push({ path: ["name"], problem: `a service cannot be renamed (it is "${current.spec.name}")` });
      if (spec.mode.kind !== current.spec.mode.kind) problems.push({ path: ["mode"], problem: `a ${current.spec.mode.kind} service cannot become ${spec.mode.kind}` });
      const published = new Set(current.spec.endpoint.ports.map((p) => `${p.published}/${p.protocol === "udp" ? "udp" : "tcp"}`));
      const added = spec.endpoint.ports.filter((p) => !published.has(`${p.published}/${p.protocol === "udp" ? "udp" : "tcp"}`));
      // Paths name the fields of the spec, as for create: `publish[1].published: …`.
      problems.push(...(await portsInUseOnHost(added, store.view(publishedByBaton))).map((f) => ({ ...f, path: ["publish", spec.endpoint.ports.indexOf(added[f.path[1] as number]!), "published"] })));
      if (problems.length) throw validationError(inSpec(problems));
      if (req.body.dryRun) {
        // Nothing is written: the diff and the plan, from what the store holds now.
        return { dryRun: true, ...store.view((tx) => previewUpdate(current, spec, tx.tasksOfService(current.id), deps.clock.now(), force === true)) };
      }
      const updated = await retryTakenVip(() => store.update((tx) => {
        const svc = tx.get("services", current.id);
        if (!svc) throw new BatonError("NOT_FOUND", `service "${current.spec.name}" was removed`);
        if (svc.version !== version) {
          throw new BatonError("VERSION_CONFLICT", `service "${svc.spec.name}" changed since it was read (version ${version}, now ${svc.version}): read it again and re-apply the change`, [{ path: ["version"], problem: `${version} is not the current version ${svc.version}` }], { retryable: true });
        }
        const conflicts = [...portConflicts(tx, spec.endpoint.ports, svc.id), ...missingReferences(spec.task, (kind, id) => !!tx.get(kind, id))];
        if (conflicts.length) throw validationError(inSpec(conflicts));
        attachNetworks(tx, spec);
        createMissingVolumes(tx, spec);
        const vip = svc.vip ?? (spec.endpoint.ports.length && spec.endpoint.mode !== "dnsrr" ? allocateVip(spec.name, new Set(tx.list("services").flatMap((s) => (s.vip ? [s.vip] : [])))) : undefined);
        return tx.update("services", { ...withNewSpec(svc, spec, input, deps.clock.now(), force === true), ...(vip ? { vip } : {}) });
      })).catch((err: unknown) => {
        // A port another manager's service took since this cache saw it: the store's field error,
        // with the path of this request's body as above.
        if (err instanceof BatonError && err.code === "VALIDATION_FAILED" && err.fields.every((f) => f.path[0] === "publish")) throw validationError(inSpec(err.fields));
        throw err;
      });
      deps.log.info({ serviceId: updated.id, specVersion: updated.specVersion, updating: updated.updateStatus?.state }, "service updated");
      return withStatus(updated);
    },
  );

  app.post<{ Params: { ref: string } }>(
    "/services/:ref/rollback",
    { schema: { tags: ["services"], summary: "Return to the previous spec, rolled out with the rollback config", params: Ref, response: errors } },
    async (req) => {
      const updated = await store.update((tx) => tx.update("services", withRollback(findService(tx, req.params.ref), deps.clock.now())));
      deps.log.info({ serviceId: updated.id, specVersion: updated.specVersion }, "service rollback started");
      return withStatus(updated);
    },
  );

  app.get<{ Params: { ref: string } }>("/services/:ref", { schema: { tags: ["services"], summary: "Inspect a service", params: Ref, response: { 404: ErrorBody } } }, (req) =>
    withStatus(store.view((tx) => findService(tx, req.params.ref))),
  );

  app.post<{ Params: { ref: string }; Body: ScaleInput }>(
    "/services/:ref/scale",
    { schema: { tags: ["services"], summary: "Set a replicated service's replica count", params: Ref, body: ScaleInput, response: errors } },
    async (req) => {
      const updated = await store.update((tx) => {
        const s = findService(tx, req.params.ref);
        if (s.spec.mode.kind !== "replicated") {
          throw new BatonError("VALIDATION_FAILED", `service "${s.spec.name}" is global; only replicated services can be scaled`, [{ path: ["replicas"], problem: "cannot scale a global service" }]);
        }
        // The input form follows, so a later `service update` keeps this count.
        const specInput = s.specInput !== undefined ? { ...(s.specInput as object), replicas: req.body.replicas } : undefined;
        return tx.update("services", { ...s, spec: { ...s.spec, mode: { kind: "replicated", replicas: req.body.replicas } }, ...(specInput ? { specInput } : {}) });
      });
      deps.log.info({ serviceId: updated.id, replicas: req.body.replicas }, "service scaled");
      return updated;
    },
  );

  app.post<{ Params: { ref: string } }>(
    "/services/:ref/rebalance",
    { schema: { tags: ["services"], summary: "Move a replicated service's tasks toward an even spread over the nodes that can take them (start-first); answers what moves", params: Ref, response: errors } },
    async (req) => {
      const result = await store.update((tx) => rebalanceService(tx, findService(tx, req.params.ref), deps.clock.now(), store.maxOpsPerTxn));
      if (result.moves.length) deps.log.info({ serviceId: result.serviceId, moves: result.moves.length }, "service rebalance started");
      return result;
    },
  );

  app.delete<{ Params: { ref: string } }>("/services/:ref", { schema: { tags: ["services"], summary: "Remove a service; its tasks are stopped", params: Ref, response: { 404: ErrorBody } } }, async (req) => {
    const removed = await store.update((tx) => {
      const s = findService(tx, req.params.ref);
      tx.delete("services", s.id);
      return s;
    });
    deps.log.info({ serviceId: removed.id, name: removed.spec.name }, "service removed");
    return { id: removed.id, name: removed.spec.name };
  });
};

/**
 * Runs a service write again when the VIP it chose as free was taken meanwhile by another
 * manager's service (the store's VIP key refused it): by then this cache has that service, so
 * the next choice differs. Any other error passes.
 */
async function retryTakenVip<T>(write: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (attempt < 3 && err instanceof BatonError && err.code === "VERSION_CONFLICT" && err.fields[0]?.path[0] === "vip") continue;
      throw err;
    }
  }
}
