import { Type, type Static } from "@sinclair/typebox";
import { Ajv } from "ajv";
import type { NodeDescription, TaskStatsReport, TaskStatusUpdate } from "../dispatcher/protocol.js";
import { taskStates } from "../model/task-state.js";

/**
 * What a node sends is checked before it reaches the store: a node with a valid certificate is
 * still only trusted to describe itself and report on its own tasks, with well-formed values.
 * The same TypeBox + ajv pair validates the API's bodies.
 */
const Count = Type.Number({ minimum: 0 });
const Text = Type.String({ maxLength: 65_536 });

const Description = Type.Object({
  nodeId: Type.String({ maxLength: 64 }),
  hostname: Type.String({ maxLength: 253 }),
  role: Type.Optional(Type.String({ maxLength: 16 })),
  resources: Type.Object({ cpus: Count, memoryBytes: Count }),
  drivers: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 16 }),
  platform: Type.Object({ os: Type.String({ maxLength: 64 }), arch: Type.String({ maxLength: 64 }) }),
  agentVersion: Type.String({ maxLength: 64 }),
  address: Type.Optional(Type.String({ maxLength: 253 })),
  limits: Type.Optional(
    Type.Object({ memory: Type.Boolean(), cpu: Type.Boolean(), cgroup: Type.Union([Type.Literal("v1"), Type.Literal("v2"), Type.Literal("none")]) }),
  ),
});

const Update = Type.Object({
  taskId: Type.String({ maxLength: 64 }),
  state: Type.Union(taskStates.map((s) => Type.Literal(s))),
  seq: Count,
  message: Type.Optional(Text),
  err: Type.Optional(Text),
  exitCode: Type.Optional(Type.Number()),
  signal: Type.Optional(Type.String({ maxLength: 32 })),
  pid: Type.Optional(Count),
  containerId: Type.Optional(Type.String({ maxLength: 128 })),
  port: Type.Optional(Count),
  ready: Type.Optional(Type.Boolean()),
  health: Type.Optional(Type.Union([Type.Literal("starting"), Type.Literal("healthy"), Type.Literal("unhealthy")])),
  ports: Type.Optional(Type.Record(Type.String(), Count)),
  traffic: Type.Optional(Type.Object({ requests: Count, errors: Count })),
});

const Stats = Type.Object({
  taskId: Type.String({ maxLength: 64 }),
  cpus: Type.Optional(Type.Number({ minimum: 0 })),
  memoryBytes: Type.Optional(Type.Number({ minimum: 0 })),
  error: Type.Optional(Text),
});

const ajv = new Ajv({ strict: false });
const isDescription = ajv.compile<Static<typeof Description>>(Description);
const isUpdate = ajv.compile<Static<typeof Update>>(Update);
const isStats = ajv.compile<Static<typeof Stats>>(Stats);

export const validDescription = (d: unknown): d is NodeDescription => isDescription(d);

/** Keeps the well-formed updates; a malformed one is dropped, not half-applied. */
export function validUpdates(u: unknown): TaskStatusUpdate[] {
  return Array.isArray(u) ? (u.filter((x) => isUpdate(x)) as TaskStatusUpdate[]) : [];
}

/** Keeps the well-formed stats of a node's answer; a malformed entry is dropped. */
export function validStats(s: unknown): TaskStatsReport[] {
  return Array.isArray(s) ? (s.filter((x) => isStats(x)) as TaskStatsReport[]) : [];
}
