import type { FastifyPluginAsync } from "fastify";
import { Type } from "@sinclair/typebox";
import type { Task } from "../model/objects.js";
import type { StoreEvent } from "../store/store.js";
import { MAX_BUFFERED_BYTES, StreamWriter } from "./stream-writer.js";
import { ErrorBody } from "../input/schemas.js";
import type { ApiDeps } from "./deps.js";
import { publicObject } from "../secrets/public.js";

/** Keeps idle connections (and proxies) from timing out. */
const KEEPALIVE_MS = 15_000;

const Query = Type.Object(
  {
    since: Type.Optional(Type.String({ pattern: "^\\d+$", description: "resume after this revision" })),
    kind: Type.Optional(Type.String({ description: "comma-separated: nodes,services,tasks" })),
    service: Type.Optional(Type.String({ description: "only this service (id) and its tasks" })),
  },
  { additionalProperties: false },
);

/** One event as sent to clients: the store event plus the object's id; a secret's metadata only. */
export const toWire = (e: StoreEvent): Record<string, unknown> => ({ revision: e.revision, kind: e.kind, op: e.op, id: e.object.id, object: publicObject(e.kind, e.object) });

export const eventsRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  app.get<{ Querystring: { since?: string; kind?: string; service?: string } }>(
    "/events",
    {
      schema: {
        tags: ["events"],
        summary: "Server-sent events of store changes (id = revision; resume with ?since= or Last-Event-ID)",
        querystring: Query,
        response: { 410: ErrorBody },
      },
    },
    (req, reply) => {
      const lastId = req.headers["last-event-id"];
      const since = req.query.since ?? (typeof lastId === "string" && /^\d+$/.test(lastId) ? lastId : undefined);
      const kinds = req.query.kind ? new Set(req.query.kind.split(",")) : undefined;
      const service = req.query.service;
      // The cluster record (token hashes, revocations) is the manager's business, not an event.
      const matches = (e: StoreEvent): boolean =>
        e.kind !== "clusters" &&
        (!kinds || kinds.has(e.kind)) &&
        (!service || (e.kind === "services" ? e.object.id === service : e.kind === "tasks" && (e.object as Task).serviceId === service));
      const from = since !== undefined ? Number(since) : deps.store.revision();
      const out = new StreamWriter(reply.raw);
      let delivered = from;
      // Throws COMPACTED (410) before anything is sent, so the client relists. Events are
      // delivered asynchronously, so the head below is always written first.
      const watch = deps.store.watch(from, (events) => {
        if (out.isOverflowed) return;
        let text = "";
        for (const e of events) if (matches(e)) text += `id: ${e.revision}\nevent: ${e.kind}\ndata: ${JSON.stringify(toWire(e))}\n\n`;
        if (text && !out.write(text)) return slowReader();
        // A batch is one transaction, written whole: a reader that got it can resume after it.
        delivered = events[events.length - 1]!.revision;
      });
      // The reader fell behind: stop watching (memory stays bounded) and end with a resumable error.
      const slowReader = (): void => {
        watch.cancel();
        clearInterval(keepalive);
        const err = { code: "SLOW_CONSUMER", message: `the reader fell behind by more than ${MAX_BUFFERED_BYTES} bytes; resume from revision ${delivered}`, fields: [], resumeFrom: delivered };
        out.endAfterDrain(`event: error\ndata: ${JSON.stringify(err)}\n\n`);
        deps.log.warn({ resumeFrom: delivered }, "events stream ended: slow reader");
      };
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive", "x-baton-revision": String(deps.store.revision()) });
      res.write(`: revision ${deps.store.revision()}\n\n`);
      const keepalive = setInterval(() => out.write(": keepalive\n\n"), KEEPALIVE_MS);
      const close = (): void => {
        clearInterval(keepalive);
        watch.cancel();
      };
      req.raw.on("close", close);
      res.on("error", close);
    },
  );
};
