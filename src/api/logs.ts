import type { FastifyPluginAsync } from "fastify";
import { Type } from "@sinclair/typebox";
import { taskName, type Task } from "../model/objects.js";
import { BatonError } from "../lib/errors.js";
import type { StoreEvent } from "../store/store.js";
import { ErrorBody } from "../input/schemas.js";
import type { ApiDeps } from "./deps.js";
import { findService, findTask } from "./lookup.js";
import { MAX_BUFFERED_BYTES } from "./stream-writer.js";
import type { LogReadOptions, LogStream } from "../agent/logs/local-log-source.js";
import { FORWARDED_HEADER } from "./forwarding.js";

/**
 * Where task logs are read: the local agent's files, the session of the node that runs the task,
 * or (`forward`, the default) the manager that holds that session (cluster/session-forward.ts).
 */
export interface LogSource {
  /** The last `tail` lines (all when undefined), then (follow) new ones until cancelled. */
  open(task: Task, opts: LogReadOptions, onLines: (lines: string[]) => void, isPaused?: () => boolean, forward?: boolean): LogStream;
}

export interface LogLine {
  taskId: string;
  task: string;
  node: string;
  line: string;
  /** Set instead of a line when the task's logs could not be read (its node is unreachable). */
  error?: string;
}

const Query = Type.Object(
  {
    follow: Type.Optional(Type.String({ enum: ["0", "1", "true", "false"] })),
    tail: Type.Optional(Type.String({ pattern: "^(all|\\d+)$" })),
  },
  { additionalProperties: false },
);

/** `?follow=1|true` and `?tail=N|all`, as both log routes read them. */
const logQuery = (q: { follow?: string; tail?: string }): { follow: boolean; tail: number | undefined } => ({
  follow: q.follow === "1" || q.follow === "true",
  tail: q.tail && q.tail !== "all" ? Number(q.tail) : undefined,
});

export const logsRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { store } = deps;
  app.get<{ Params: { ref: string }; Querystring: { follow?: string; tail?: string } }>(
    "/tasks/:ref/logs",
    {
      schema: {
        tags: ["tasks"],
        summary: "Logs of one task as NDJSON lines {taskId, task, node, line}; what a manager without the node's session asks the one holding it",
        params: Type.Object({ ref: Type.String() }),
        querystring: Query,
        response: { 404: ErrorBody },
      },
    },
    (req, reply) => {
      const { follow, tail } = logQuery(req.query);
      const { task, node } = store.view((tx) => {
        const task = findTask(tx, req.params.ref);
        return { task, node: task.nodeId ? (tx.get("nodes", task.nodeId)?.hostname ?? task.nodeId) : "" };
      });
      if (!task.nodeId) throw new BatonError("BAD_REQUEST", `task ${task.id} is not on a node yet: it has no logs`, [{ path: ["task"], problem: "not assigned" }]);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      const meta = { taskId: task.id, task: `${taskName(task)}.${task.id.slice(0, 12)}`, node };
      const forward = req.headers[FORWARDED_HEADER] === undefined;
      const s = deps.logs.open(
        task,
        { follow, ...(tail !== undefined ? { tail } : {}) },
        (lines) => void res.write(lines.map((line) => JSON.stringify({ ...meta, line } satisfies LogLine)).join("\n") + "\n"),
        () => res.writableLength > MAX_BUFFERED_BYTES,
        forward,
      );
      s.done
        .catch((err: unknown) => {
          if (!res.writableEnded) res.write(JSON.stringify({ ...meta, line: "", error: err instanceof Error ? err.message : String(err) } satisfies LogLine) + "\n");
        })
        .finally(() => res.end());
      req.raw.on("close", () => s.cancel());
    },
  );

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
      const { follow, tail } = logQuery(req.query);
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
      const failed = (t: Task, err: unknown): void => {
        const meta = { taskId: t.id, task: `${taskName(t)}.${t.id.slice(0, 12)}`, node: hostnames.get(t.nodeId!) ?? t.nodeId! };
        if (!res.writableEnded) res.write(JSON.stringify({ ...meta, line: "", error: err instanceof Error ? err.message : String(err) } satisfies LogLine) + "\n");
      };
      const streams: LogStream[] = [];
      const seen = new Set<string>();
      if (!follow) {
        // One task after the other, so each task's lines stay together.
        void (async () => {
          for (const t of tasks) {
            const s = deps.logs.open(t, { follow: false, ...(tail !== undefined ? { tail } : {}) }, (lines) => send(t, lines), isPaused);
            streams.push(s);
            await s.done.catch((err: unknown) => failed(t, err));
          }
          res.end();
        })();
        req.raw.on("close", () => {
          for (const s of streams) s.cancel();
        });
        return;
      }
      const followTask = (t: Task, opts: LogReadOptions): void => {
        seen.add(t.id);
        const s = deps.logs.open(t, opts, (lines) => send(t, lines), isPaused);
        streams.push(s);
        s.done.catch((err: unknown) => failed(t, err));
      };
      for (const t of tasks) followTask(t, { follow: true, ...(tail !== undefined ? { tail } : {}) });
      // New tasks of the service (replacements, scale up) join the stream once started.
      const watch = store.watch(store.revision(), (events: StoreEvent[]) => {
        for (const e of events) {
          const t = e.object as Task;
          if (e.kind !== "tasks" || t.serviceId !== service.id || seen.has(t.id) || t.status.state !== "running") continue;
          followTask(t, { follow: true });
        }
      });
      req.raw.on("close", () => {
        watch.cancel();
        for (const s of streams) s.cancel();
      });
    },
  );
};
