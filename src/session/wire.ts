import type { AssignmentChange, EndpointsChange, NetworkAttachment, NodeDescription, TaskStatsReport, TaskStatusUpdate } from "../dispatcher/protocol.js";
import type { ErrorCode } from "../lib/errors.js";

/**
 * The node session on the wire: JSON messages over one WebSocket on mutual TLS
 * (`wss://manager:4242/v1/session`). The agent's calls of protocol.ts map one to one; only a
 * session's first message may be `register`, and the manager answers it with the session id
 * that makes every later message of this connection count.
 */
export const SESSION_PATH = "/v1/session";

/** Agent → manager. */
export type AgentMessage =
  | { type: "register"; desc: NodeDescription }
  | { type: "heartbeat" }
  | { type: "subscribe"; stream: "assignments" | "endpoints" | "volumes" | "attachable" }
  | { type: "status"; id: number; updates: TaskStatusUpdate[] }
  | { type: "logs"; id: number; lines: string[] }
  | { type: "logs-end"; id: number; error?: string }
  | { type: "stats"; id: number; stats: TaskStatsReport[] }
  | { type: "leave" };

/** Manager → agent. */
export type ManagerMessage =
  /** `managers`: every manager's host:port (HA), so the agent can fail over to any of them. */
  | { type: "registered"; sessionId: string; heartbeatPeriodMs: number; managers?: string[] }
  | { type: "assignments"; change: AssignmentChange }
  | { type: "endpoints"; change: EndpointsChange }
  /** Every volume name of the cluster (AgentSession.volumes). */
  | { type: "volumes"; names: string[] }
  /** The attachable networks (AgentSession.attachableNetworks). */
  | { type: "attachable"; networks: NetworkAttachment[] }
  | { type: "ack"; id: number }
  | { type: "nack"; id: number; code: ErrorCode; message: string }
  | { type: "logs-open"; id: number; taskId: string; tail?: number; follow: boolean }
  | { type: "logs-cancel"; id: number }
  | { type: "stats-get"; id: number; taskIds: string[] }
  /** The session is over for good (the node was removed): do not reconnect. */
  | { type: "closed"; code: ErrorCode; message: string }
  /** `baton node promote` of this worker: fetch the manager material (POST /v1/join/promote) and start as a manager. */
  | { type: "promote" };

/** Close codes (4000–4999 are the application's). */
export const CloseCode = {
  /** A newer session of the same node replaced this one. */
  replaced: 4001,
  /** A protocol error: a message out of order or malformed. */
  protocol: 4002,
  /** The node is no longer part of the cluster. */
  removed: 4003,
  /** The peer's certificate does not allow a session. */
  refused: 4004,
} as const;

/** Parses one frame; undefined when it is not a JSON object with a string `type`. */
export function parseMessage<T extends { type: string }>(data: unknown): T | undefined {
  try {
    const text = Buffer.isBuffer(data) ? data.toString("utf8") : Array.isArray(data) ? Buffer.concat(data as Buffer[]).toString("utf8") : String(data);
    const m: unknown = JSON.parse(text);
    return m && typeof m === "object" && typeof (m as { type?: unknown }).type === "string" ? (m as T) : undefined;
  } catch {
    return undefined;
  }
}
