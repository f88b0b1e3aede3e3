import type { DesiredState, TaskState } from "../model/task-state.js";
import type { Node, TaskSpec, TaskStatus } from "../model/objects.js";

/**
 * The session between an agent and the dispatcher. The agent imports only this file and the
 * model: in `baton up` the session is an in-memory object; across hosts it is carried over mTLS.
 */
export interface NodeDescription {
  /** Kept by the agent in its data dir, so a restarted agent is the same node. */
  nodeId: string;
  hostname: string;
  role: Node["role"];
  resources: Node["resources"];
  drivers: string[];
  platform: Node["platform"];
  agentVersion: string;
  address?: string;
}

/** What the agent needs to run and report one task. */
export interface Assignment {
  taskId: string;
  serviceId: string;
  serviceName: string;
  slot: number;
  nodeId: string;
  desiredState: DesiredState;
  state: TaskState;
  spec: TaskSpec;
  /** Port the task already holds (set when the task was started earlier, for re-adoption). */
  port?: number;
}

export type AssignmentChange =
  | { type: "full"; assignments: Assignment[] }
  | { type: "update"; upserts: Assignment[]; removes: string[] };

/** One observed change of one task; `timestamp` is when the agent observed it (its clock). */
export interface TaskStatusUpdate extends Omit<TaskStatus, "startedAt" | "seq"> {
  taskId: string;
  /** Increases with every report the node makes, across agent restarts (see Agent.nextSeq). */
  seq: number;
}

export interface AgentSession {
  /** Registers (or re-registers) the node; answers the heartbeat period to keep. */
  register(desc: NodeDescription): Promise<{ heartbeatPeriodMs: number }>;
  heartbeat(): Promise<void>;
  /** First call delivers the full set, then changes. Returns a function that unsubscribes. */
  assignments(onChange: (change: AssignmentChange) => void): () => void;
  reportStatus(updates: TaskStatusUpdate[]): Promise<void>;
  close(): void;
}
