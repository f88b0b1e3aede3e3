import type { FastifyPluginAsync } from "fastify";
import { timingSafeEqual } from "node:crypto";
import { Type } from "@sinclair/typebox";
import { BatonError, validationError } from "../lib/errors.js";
import { newId } from "../lib/ids.js";
import type { Config, Secret, Service } from "../model/objects.js";
import { publicSecret } from "../secrets/public.js";
import type { ReadTx } from "../store/store.js";
import { ErrorBody, FileObjectInput, MAX_SECRET_BYTES } from "../input/schemas.js";
import type { ApiDeps } from "./deps.js";
import { findNamed } from "./lookup.js";

const Ref = Type.Object({ ref: Type.String({ description: "id, name or unique id prefix" }) });
const errors = { 400: ErrorBody, 404: ErrorBody, 409: ErrorBody };
const CompareBody = Type.Object({ data: Type.String({ description: "the content to compare, base64" }) }, { additionalProperties: false });
const CompareAnswer = Type.Object({ same: Type.Boolean() });

/** Whether two contents are the same, in time that does not depend on where they differ. */
function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

type FileKind = "secrets" | "configs";
const singular = (kind: FileKind): string => (kind === "secrets" ? "secret" : "config");

/** The services whose spec refers to the object (a removal would break their next task). */
function usersOf(tx: ReadTx, kind: FileKind, id: string): Service[] {
  return tx.list("services").filter((s) => (s.spec.task[kind] ?? []).some((r) => r.id === id));
}

/** The decoded data, or a problem naming `data`: base64 of at most 500 KiB, as docker. */
function decodeData(data: string): Buffer {
  const bytes = Buffer.from(data, "base64");
  if (bytes.length > MAX_SECRET_BYTES) throw validationError([{ path: ["data"], problem: `${bytes.length} bytes is over the limit of ${MAX_SECRET_BYTES} (500 KiB)` }]);
  if (bytes.length === 0) throw validationError([{ path: ["data"], problem: "must not be empty" }]);
  return bytes;
}

/**
 * Secrets and configs: named blobs a service's tasks get as files (docs/secrets.md). A secret's
 * data is sealed before it is stored and no answer ever carries it, sealed or not; a config is
 * stored as it is and shown by inspect. Removal is refused while a service refers to it.
 */
export const secretsRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { store } = deps;
  for (const kind of ["secrets", "configs"] as const) {
    const one = singular(kind);
    const show = (o: Secret | Config) => (kind === "secrets" ? publicSecret(o as Secret) : o);

    app.post<{ Body: FileObjectInput }>(
      `/${kind}`,
      { schema: { tags: [kind], summary: kind === "secrets" ? "Create a secret (data: base64; sealed at rest, never shown again)" : "Create a config (data: base64)", body: FileObjectInput, response: errors } },
      async (req, reply) => {
        const { name, labels = {} } = req.body;
        const bytes = decodeData(req.body.data);
        const id = newId();
        let stored: Omit<Secret, "version" | "createdAt" | "updatedAt"> | Omit<Config, "version" | "createdAt" | "updatedAt">;
        if (kind === "secrets") {
          if (!deps.secrets) throw new BatonError("UNAVAILABLE", "this manager has no secrets data key: secrets cannot be stored here");
          stored = { id, name, labels, sealed: deps.secrets.seal(id, bytes), size: bytes.length };
        } else {
          stored = { id, name, labels, data: bytes.toString("base64") };
        }
        bytes.fill(0);
        // The name check of the store (NAME_IN_USE) is the one that counts; fsynced before the answer.
        const created = await store.update((tx) => {
          if (tx.byName(kind, name)) throw new BatonError("NAME_IN_USE", `${one} name "${name}" is already in use`, [{ path: ["name"], problem: `"${name}" is already in use` }]);
          return tx.create(kind, stored as never);
        });
        deps.log.info({ [`${one}Id`]: created.id, name }, `${one} created`);
        return reply.status(201).send({ id: created.id });
      },
    );

    app.get(`/${kind}`, { schema: { tags: [kind], summary: `List ${kind}${kind === "secrets" ? " (metadata only)" : ""}` } }, () =>
      (store.view((tx) => tx.list(kind)) as (Secret | Config)[]).sort((a, b) => a.name.localeCompare(b.name)).map(show),
    );

    app.get<{ Params: { ref: string } }>(`/${kind}/:ref`, { schema: { tags: [kind], summary: `Inspect a ${one}${kind === "secrets" ? " (metadata only)" : ""}`, params: Ref, response: { 404: ErrorBody } } }, (req) =>
      show(store.view((tx) => findNamed(tx, kind, req.params.ref))),
    );

    // Whether the stored content is the given one, without ever answering it: `stack deploy` finds
    // a secret whose file changed (secrets cannot change) this way. The data is neither logged nor
    // kept; whoever may call this may already run a task that reads the secret.
    app.post<{ Params: { ref: string }; Body: { data: string } }>(
      `/${kind}/:ref/compare`,
      { schema: { tags: [kind], summary: `Whether a ${one}'s content is the given one (answers only same: true|false)`, params: Ref, body: CompareBody, response: { 200: CompareAnswer, 400: ErrorBody, 404: ErrorBody } } },
      (req) => {
        const given = decodeData(req.body.data);
        const o = store.view((tx) => findNamed(tx, kind, req.params.ref));
        let stored: Buffer;
        if (kind === "secrets") {
          if (!deps.secrets) throw new BatonError("UNAVAILABLE", "this manager has no secrets data key: secrets cannot be read here");
          stored = deps.secrets.open(o.id, (o as Secret).sealed);
        } else stored = Buffer.from((o as Config).data, "base64");
        try {
          return { same: sameBytes(stored, given) };
        } finally {
          stored.fill(0);
          given.fill(0);
        }
      },
    );

    app.delete<{ Params: { ref: string } }>(`/${kind}/:ref`, { schema: { tags: [kind], summary: `Remove a ${one} (refused while a service uses it)`, params: Ref, response: errors } }, async (req, reply) => {
      const removed = await store.update((tx) => {
        const o = findNamed(tx, kind, req.params.ref);
        const users = usersOf(tx, kind, o.id);
        if (users.length) {
          const names = users.map((s) => s.spec.name).sort();
          throw new BatonError("IN_USE", `${one} "${o.name}" is in use by service${names.length > 1 ? "s" : ""} ${names.map((n) => `"${n}"`).join(", ")}`, names.map((n) => ({ path: ["services", n], problem: `uses ${one} "${o.name}"` })));
        }
        tx.delete(kind, o.id);
        return o;
      });
      deps.log.info({ [`${one}Id`]: removed.id, name: removed.name }, `${one} removed`);
      return reply.status(204).send();
    });
  }
};
