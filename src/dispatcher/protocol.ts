import type { DesiredState, TaskState } from "../model/task-state.js";
import type { EndpointSpec, Node, PublishedPort, TaskSpec, TaskStatus } from "../model/objects.js";

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
  /** What limits the node enforces; absent from agents that predate limits (they enforce none). */
  limits?: Node["limits"];
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
  /**
   * The secrets and configs of this task, with their contents: only in the assignments of the
   * node that runs it, only while it should run. Never logged.
   */
  files?: TaskFile[];
  /** The networks of `spec.networks`, as the node creates them (docker: a bridge network each). */
  networks?: NetworkAttachment[];
  /** The service's endpoint mode is dnsrr: its containers answer to its name on their networks. */
  dnsrr?: boolean;
}

/** One secret or config file of a task, as the agent writes it (docs/secrets.md). */
export interface TaskFile {
  kind: "secret" | "config";
  name: string;
  /** FileReference.target: relative to the task's directory, or absolute in a container. */
  target: string;
  mode: number;
  uid?: string;
  gid?: string;
  /** The contents, base64. */
  data: string;
}

/** What a node needs to know of a network a task is attached to. */
export interface NetworkAttachment {
  id: string;
  name: string;
  internal: boolean;
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

/** One task's resource use as its node's driver measured it, or why it could not. */
export interface TaskStatsReport {
  taskId: string;
  /** CPU use as a fraction of one core (1.5 = one and a half cores busy). */
  cpus?: number;
  memoryBytes?: number;
  error?: string;
}

/** A ready task of a service, as the mesh reaches it. */
export interface EndpointBackend {
  taskId: string;
  nodeId: string;
  /** Address of the task's node as seen from other nodes (127.0.0.1 in `baton up`). */
  host: string;
  /** Service port target → the task's port on its node. */
  ports: Record<string, number>;
  /** Share of new traffic relative to the other backends (canary); absent = 1. */
  weight?: number;
}

/** What every node's mesh needs to know about one service: its ports and its ready tasks. */
export interface ServiceEndpoints {
  serviceId: string;
  name: string;
  vip?: string;
  ports: PublishedPort[];
  balance: EndpointSpec["balance"];
  waitForBackendMs: number;
  backends: EndpointBackend[];
  /** A canary is being watched: the mesh reports what it sends each task of this service. */
  watchTraffic?: boolean;
  /** Ids of the service's networks; absent = the default network. Discovery is scoped by them. */
  networks?: string[];
}

export type EndpointsChange =
  | { type: "full"; services: ServiceEndpoints[] }
  | { type: "update"; upserts: ServiceEndpoints[]; removes: string[] };

export interface AgentSession {
  /** Registers (or re-registers) the node; answers the heartbeat period to keep. */
  register(desc: NodeDescription): Promise<{ heartbeatPeriodMs: number }>;
  heartbeat(): Promise<void>;
  /** First call delivers the full set, then changes. Returns a function that unsubscribes. */
  assignments(onChange: (change: AssignmentChange) => void): () => void;
  reportStatus(updates: TaskStatusUpdate[]): Promise<void>;
  /** Every service's endpoints (the mesh's input): the full set first, then changes. Returns unsubscribe. */
  endpoints(onChange: (change: EndpointsChange) => void): () => void;
  /**
   * The names of every volume of the cluster: the whole set at once, then again at each change.
   * A node removes its data of a volume that left the set (`baton volume rm`) and no task of its
   * own uses. Optional: a session without it removes nothing.
   */
  volumes?(onChange: (names: string[]) => void): () => void;
  /**
   * The attachable networks (`network create --attachable`): the whole set at once, then again at
   * each change. A node with docker keeps each one's engine network, so standalone containers can
   * join it. Optional, as `volumes`.
   */
  attachableNetworks?(onChange: (networks: NetworkAttachment[]) => void): () => void;
  close(): void;
}
