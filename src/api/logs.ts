import type { FastifyPluginAsync } from "fastify";
import { Type } from "@sinclair/typebox";
import { taskName, type Task } from "../model/objects.js";
import type { StoreEvent } from "../store/store.js";
import { ErrorBody } from "../input/schemas.js";
import type { ApiDeps } from "./deps.js";
import { findService } from "./lookup.js";
import { MAX_BUFFERED_BYTES } from "./stream-writer.js";

/** Where task logs are read: the local agent's files in `baton up`, a node session elsewhere. */
export interface LogSource {
  /** The last `lines` lines (all when undefined) and a cursor to follow from. */
  tail(task: Task, lines?: number): { lines: string[]; cursor: unknown };
  /**
   * Calls onLines with complete lines appended after the cursor. While `isPaused()` (the reader
   * is behind) nothing is read: the file is the buffer. Returns cancel.
   */
  follow(task: Task, cursor: unknown, onLines: (lines: string[]) => void, isPaused?: () => boolean): () => void;
}

export interface LogLine {
  taskId: string;
  task: string;
  node: string;
  line: string;
}

const Query = Type.Object(
  {
    follow: Type.Optional(Type.String({ enum: ["0", "1", "true", "false"] })),
    tail: Type.Optional(Type.String({ pattern: "^(all|\\d+)$" })),
  },
  { additionalProperties: false },
);

export const logsRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { store } = deps;
  app.get<{ Params: { ref: string }; Querystring: { follow?: string; tail?: string } }>(
    "/services/:ref/logs",
    {
      schema: {
        tags: ["services"],
        summary: "Logs of a service's tasks as NDJSON lines {taskId, task, node, line}; follow streams new lines and new tasks",
        params: Type.Object({ ref: Type.String() }),
        querystring: Query,
        response: { 404: ErrorBody },
      },
    },
    (req, reply) => {
      const follow = req.query.follow === "1" || req.query.follow === "true";
      const tail = req.query.tail && req.query.tail !== "all" ? Number(req.query.tail) : undefined;
      const { service, tasks, hostnames } = store.view((tx) => {
        const service = findService(tx, req.params.ref);
        return {
          service,
          tasks: tx.tasksOfService(service.id).filter((t) => t.nodeId && t.status.state !== "assigned").sort((a, b) => a.createdAt - b.createdAt),
          hostnames: new Map(tx.list("nodes").map((n) => [n.id, n.hostname])),
        };
      });
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      const send = (t: Task, lines: string[]): void => {
        if (lines.length === 0) return;
        const meta = { taskId: t.id, task: `${taskName(t)}.${t.id.slice(0, 12)}`, node: hostnames.get(t.nodeId!) ?? t.nodeId! };
        res.write(lines.map((line) => JSON.stringify({ ...meta, line } satisfies LogLine)).join("\n") + "\n");
      };
      // Backpressure: while the reader has this much unread, followed files are not read further.
      const isPaused = (): boolean => res.writableLength > MAX_BUFFERED_BYTES;
      const cursors = new Map<string, unknown>();
      for (const t of tasks) {
        const { lines, cursor } = deps.logs.tail(t, tail);
        cursors.set(t.id, cursor);
        send(t, lines);
      }
      if (!follow) return res.end();
      const cancels: (() => void)[] = [];
      const followTask = (t: Task, cursor: unknown): void => void cancels.push(deps.logs.follow(t, cursor, (lines) => send(t, lines), isPaused));
      for (const t of tasks) followTask(t, cursors.get(t.id));
      // New tasks of the service (replacements, scale up) join the stream once started.
      const watch = store.watch(store.revision(), (events: StoreEvent[]) => {
        for (const e of events) {
          const t = e.object as Task;
          if (e.kind !== "tasks" || t.serviceId !== service.id || cursors.has(t.id) || t.status.state !== "running") continue;
          cursors.set(t.id, null);
          followTask(t, null);
        }
      });
      req.raw.on("close", () => {
        watch.cancel();
        for (const c of cancels) c();
      });
    },
  );
};
