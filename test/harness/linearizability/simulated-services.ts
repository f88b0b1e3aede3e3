// A reference execution for the checker's own tests: concurrent clients against an in-memory
// service registry that applies each operation atomically at one moment between its invoke and
// its return. Its histories are linearizable by construction; `mutate*` then break them in ways
// the checker must catch.
import { prng } from "./prng.js";
import type { ServiceOp, ServiceOutput } from "./service-model.js";

export interface SimOptions {
  seed: number;
  clients: number;
  opsPerClient: number;
  names: number;
  /** Probability that an operation never answers (applied or not, at random). @default 0 */
  timeoutRate?: number;
  /** Probability that a read is marked stale and served an older state. @default 0 */
  staleRate?: number;
  /** Whether the system bumps versions by itself now and then (serviceModel's systemWrites). @default false */
  systemWrites?: boolean;
}

interface Svc {
  id: string;
  version: number;
  spec: { w: string };
}

/** One applied change of a name's state by a client operation, for the mutations. */
export interface Change {
  name: string;
  op: ServiceOp;
  before: Svc | undefined;
  appliedAt: number;
}

export interface Simulation {
  history: ServiceOp[];
  changes: Change[];
}

export function simulate(o: SimOptions): Simulation {
  const rnd = prng(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const names = Array.from({ length: o.names }, (_, i) => `s${i}`);
  const store = new Map<string, Svc>();
  const past = new Map<string, Svc[]>(names.map((n) => [n, []]));
  let revision = 0;
  let ids = 0;
  let time = 0;
  const history: ServiceOp[] = [];
  const changes: Change[] = [];
  const tick = (): number => (time += 1 + Math.floor(rnd() * 3));

  type Phase = { kind: "idle" } | { kind: "invoked"; op: ServiceOp } | { kind: "applied"; op: ServiceOp; lost: boolean };
  const clients = Array.from({ length: o.clients }, (_, c) => ({ c, left: o.opsPerClient, phase: { kind: "idle" } as Phase, seen: new Map<string, number>(), writes: 0 }));

  const set = (name: string, svc: Svc | undefined): void => {
    const cur = store.get(name);
    if (cur) past.get(name)!.push(cur);
    if (svc) store.set(name, svc);
    else store.delete(name);
  };

  function apply(op: ServiceOp, seen: Map<string, number>): ServiceOp {
    const { name } = op.input;
    const cur = store.get(name);
    const answer = (output: ServiceOutput, outcome: "ok" | "fail" = "ok"): ServiceOp => ({ ...op, output, outcome });
    const change = (next: Svc | undefined): void => {
      changes.push({ name, op, before: cur, appliedAt: time });
      set(name, next);
    };
    switch (op.op) {
      case "create": {
        if (cur) return answer({ code: "NAME_IN_USE" }, "fail");
        const svc = { id: `id${++ids}`, version: ++revision, spec: op.input.spec as Svc["spec"] };
        change(svc);
        seen.set(name, svc.version);
        return answer({ id: svc.id, version: svc.version });
      }
      case "update": {
        if (!cur) return answer({ code: "NOT_FOUND" }, "fail");
        if (cur.version !== op.input.version) return answer({ code: "VERSION_CONFLICT" }, "fail");
        const svc = { ...cur, version: ++revision, spec: op.input.spec as Svc["spec"] };
        change(svc);
        seen.set(name, svc.version);
        return answer({ version: svc.version });
      }
      case "delete":
        if (!cur) return answer({ code: "NOT_FOUND" }, "fail");
        change(undefined);
        return answer({ id: cur.id });
      case "get": {
        // A stale read is served some state the name held before (or the current one).
        const older = op.input.stale ? [...past.get(name)!, ...(cur ? [cur] : [])] : [];
        const shown = op.input.stale && older.length ? pick(older) : cur;
        if (!shown) return answer({ code: "NOT_FOUND" }, "fail");
        if (!op.input.stale) seen.set(name, shown.version);
        return answer({ id: shown.id, version: shown.version, spec: shown.spec });
      }
    }
  }

  for (;;) {
    const busy = clients.filter((c) => c.left > 0 || c.phase.kind !== "idle");
    if (!busy.length) break;
    if (o.systemWrites && rnd() < 0.05) {
      const present = names.filter((n) => store.has(n));
      if (present.length) {
        const n = pick(present);
        set(n, { ...store.get(n)!, version: ++revision });
      }
    }
    const cl = pick(busy);
    const p = cl.phase;
    if (p.kind === "idle") {
      cl.left--;
      const name = pick(names);
      const kind = pick(["create", "update", "update", "delete", "get", "get"] as const);
      const spec = { w: `c${cl.c}-${++cl.writes}` };
      const input =
        kind === "create" ? { name, spec }
        : kind === "update" ? { name, spec, version: rnd() < 0.8 ? (cl.seen.get(name) ?? revision) : Math.max(0, revision - 1) }
        : kind === "get" ? { name, ...(o.staleRate && rnd() < o.staleRate ? { stale: true } : {}) }
        : { name };
      cl.phase = { kind: "invoked", op: { client: cl.c, op: kind, input, invokeAt: tick(), outcome: "timeout" } };
    } else if (p.kind === "invoked") {
      const lost = o.timeoutRate !== undefined && rnd() < o.timeoutRate;
      // A lost operation took effect or not; either way its client never hears back.
      const op = lost && rnd() < 0.5 ? p.op : apply(p.op, cl.seen);
      tick();
      cl.phase = { kind: "applied", op, lost };
    } else {
      history.push(p.lost ? { ...p.op, outcome: "timeout", output: undefined } : { ...p.op, returnAt: tick() });
      cl.phase = { kind: "idle" };
    }
  }
  return { history, changes };
}

/**
 * A read shows a state that a write which had already answered replaced: a stale read. Undefined
 * when the history has no such read. Caught for sure: specs are unique, so the old one never returns.
 */
export function mutateStaleRead(sim: Simulation, rnd: () => number): ServiceOp[] | undefined {
  const candidates: { i: number; old: Svc }[] = [];
  sim.history.forEach((g, i) => {
    if (g.op !== "get" || g.input.stale || g.outcome === "timeout") return;
    for (const ch of sim.changes) {
      if (ch.name !== g.input.name || !ch.before) continue;
      const w = sim.history.find((h) => h.client === ch.op.client && h.invokeAt === ch.op.invokeAt);
      if (w && w.outcome === "ok" && w.returnAt! < g.invokeAt) candidates.push({ i, old: ch.before });
    }
  });
  if (!candidates.length) return undefined;
  const { i, old } = candidates[Math.floor(rnd() * candidates.length)]!;
  return sim.history.map((h, k) => (k === i ? { ...h, outcome: "ok", output: { id: old.id, version: old.version, spec: old.spec } } : h));
}

/** A read shows a spec nobody wrote. Undefined when the history has no answered read. */
export function mutateInventedRead(sim: Simulation, rnd: () => number): ServiceOp[] | undefined {
  const reads = sim.history.map((h, i) => ({ h, i })).filter(({ h }) => h.op === "get" && h.outcome !== "timeout");
  if (!reads.length) return undefined;
  const { i } = reads[Math.floor(rnd() * reads.length)]!;
  return sim.history.map((h, k) => (k === i ? { ...h, outcome: "ok", output: { id: "id-invented", version: 1, spec: { w: "never-written" } } } : h));
}
