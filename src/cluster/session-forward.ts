import { request, type RequestOptions } from "node:https";
import type { IncomingMessage } from "node:http";
import type { NodeCredentials } from "../ca/node-cert.js";
import { clientTlsOptions } from "../ca/tls.js";
import type { PeerVerifierDeps } from "../ca/verify.js";
import type { TaskStatsReport } from "../dispatcher/protocol.js";
import { BatonError, type ErrorCode } from "../lib/errors.js";
import type { ManagersView } from "../manager/leadership.js";
import { parseHostPort } from "./config.js";
import { FORWARDED_HEADER } from "../api/forwarding.js";


/** Stats are sampled over about a second; a peer manager that takes longer than this is stuck. */
const STATS_TIMEOUT_MS = 15_000;
/** Connecting to a peer manager; after that a followed log stream may stay open for hours. */
const CONNECT_TIMEOUT_MS = 5_000;
/** While the reader is behind, a forwarded stream is paused and looked at again after this. */
const PAUSE_POLL_MS = 50;

export interface SessionForwardDeps {
  /** This manager's node id: never a forwarding target. */
  self: string;
  /** The latest managers view (leadership.ts): each manager's address and the sessions it holds. */
  view(): ManagersView | undefined;
  /** This manager's node certificate: its client certificate towards the others (mutual TLS). */
  credentials(): NodeCredentials;
  verifier: PeerVerifierDeps;
}

/**
 * Reads a task's logs or stats through the manager that holds its node's agent session, when
 * that is another manager: agent sessions end at any manager (the one an agent reached), but the
 * CLI may talk to any other. Each manager publishes in etcd the nodes whose sessions it holds and
 * its TLS listener's address (ManagerRecord); the request goes there over mutual TLS with this
 * manager's certificate, to the same API the CLI uses (`GET /v1/tasks/{id}/logs`,
 * `POST /v1/nodes/{id}/stats`), marked as forwarded.
 */
export class SessionForwarder {
  constructor(private readonly deps: SessionForwardDeps) {}

  /** The other manager holding `nodeId`'s session and its address, if one says it does. */
  holderOf(nodeId: string): string | undefined {
    const view = this.deps.view();
    if (!view) return undefined;
    for (const rec of view.reachable.values()) if (rec.nodeId !== this.deps.self && rec.sessions.includes(nodeId)) return rec.addr;
    return undefined;
  }

  /** A task's log lines through `manager` (NDJSON of the API's LogLine); done settles when it ends. */
  openLogs(manager: string, taskId: string, opts: { tail?: number; follow: boolean }, onLines: (lines: string[]) => void, isPaused?: () => boolean): { done: Promise<void>; cancel: () => void } {
    const query = new URLSearchParams({ follow: String(opts.follow), ...(opts.tail !== undefined ? { tail: String(opts.tail) } : {}) });
    let cancelled = false;
    let req: ReturnType<typeof request> | undefined;
    const done = new Promise<void>((resolve, reject) => {
      req = this.send(manager, "GET", `/v1/tasks/${encodeURIComponent(taskId)}/logs?${query}`, undefined, (res) => {
        if ((res.statusCode ?? 500) >= 400) return void failure(manager, res).then(reject, reject);
        let partial = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          const parts = (partial + chunk).split("\n");
          partial = parts.pop()!;
          const lines: string[] = [];
          for (const p of parts) {
            if (!p) continue;
            let l: { line?: unknown; error?: unknown };
            try {
              l = JSON.parse(p) as typeof l;
            } catch {
              l = { error: `manager ${manager} sent a log line that is not JSON` };
            }
            if (l.error !== undefined || typeof l.line !== "string") {
              cancelled = true;
              res.destroy();
              return reject(new BatonError("UNAVAILABLE", typeof l.error === "string" ? l.error : `manager ${manager} sent a malformed log line`));
            }
            lines.push(l.line);
          }
          if (lines.length) onLines(lines);
          // Backpressure: the CLI reading slowly pauses the peer's stream, as for a local file.
          if (isPaused?.()) {
            res.pause();
            const poll = (): void => void (isPaused() && !cancelled ? setTimeout(poll, PAUSE_POLL_MS) : res.resume());
            setTimeout(poll, PAUSE_POLL_MS);
          }
        });
        res.on("end", () => resolve());
        res.on("error", (err) => (cancelled ? resolve() : reject(unreachable(manager, err))));
        res.on("close", () => (cancelled || res.complete ? resolve() : reject(new BatonError("UNAVAILABLE", `manager ${manager} ended the log stream of task ${taskId}`))));
      });
      req.on("error", (err) => (cancelled ? resolve() : reject(unreachable(manager, err))));
      req.end();
    });
    return {
      done,
      cancel: () => {
        cancelled = true;
        req?.destroy();
      },
    };
  }

  /** The resource use of `nodeId`'s tasks, read through `manager`. */
  taskStats(manager: string, nodeId: string, taskIds: string[]): Promise<TaskStatsReport[]> {
    return new Promise((resolve, reject) => {
      const req = this.send(manager, "POST", `/v1/nodes/${encodeURIComponent(nodeId)}/stats`, { taskIds }, (res) => {
        if ((res.statusCode ?? 500) >= 400) return void failure(manager, res).then(reject, reject);
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => {
          try {
            resolve(JSON.parse(text) as TaskStatsReport[]);
          } catch (err) {
            reject(unreachable(manager, err));
          }
        });
      });
      req.setTimeout(STATS_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${STATS_TIMEOUT_MS / 1000} s`)));
      req.on("error", (err) => reject(unreachable(manager, err)));
    });
  }

  private send(manager: string, method: "GET" | "POST", path: string, body: unknown, onResponse: (res: IncomingMessage) => void): ReturnType<typeof request> {
    const { host, port } = parseHostPort(manager, "manager");
    const data = body === undefined ? undefined : JSON.stringify(body);
    const tls: RequestOptions = clientTlsOptions(this.deps.credentials(), this.deps.verifier, { requireRole: "manager" });
    const req = request(
      {
        host,
        port,
        path,
        method,
        agent: false,
        headers: { [FORWARDED_HEADER]: "1", ...(data === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(data) }) },
        ...tls,
      },
      onResponse,
    );
    // Only the connection is timed: a followed log stream is idle for as long as the task is quiet.
    const connectTimer = setTimeout(() => req.destroy(new Error(`no connection within ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
    req.on("socket", (s) => s.once("secureConnect", () => clearTimeout(connectTimer)));
    req.on("close", () => clearTimeout(connectTimer));
    if (method === "POST") req.end(data);
    return req;
  }
}

/** The peer's API error, as it said it. */
function failure(manager: string, res: IncomingMessage): Promise<BatonError> {
  return new Promise((resolve) => {
    let text = "";
    res.setEncoding("utf8");
    res.on("data", (c: string) => (text += c));
    res.on("end", () => {
      let j: { code?: ErrorCode; message?: string } = {};
      try {
        j = JSON.parse(text) as typeof j;
      } catch {
        /* not JSON */
      }
      resolve(new BatonError(j.code ?? "UNAVAILABLE", j.message ?? `manager ${manager} answered HTTP ${res.statusCode}`));
    });
    res.on("error", () => resolve(new BatonError("UNAVAILABLE", `manager ${manager} answered HTTP ${res.statusCode}`)));
  });
}

function unreachable(manager: string, err: unknown): BatonError {
  return err instanceof BatonError ? err : new BatonError("UNAVAILABLE", `cannot read through manager ${manager}: ${(err as Error).message ?? String(err)}`, [], { retryable: true });
}
