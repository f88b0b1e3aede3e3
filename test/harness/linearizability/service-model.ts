// The sequential model of Baton's services as the API exposes them, one object per service name:
//   create(name, spec)            → {id, version} | NAME_IN_USE
//   update(name|id, version, spec) → {version}     | VERSION_CONFLICT | NOT_FOUND
//   delete(name|id)               → {id}          | NOT_FOUND
//   get(name|id)                  → {id, version, spec} | NOT_FOUND      (stale: true = may be old)
// Versions are the store's revisions (SQLite's counter, etcd's mod revisions): numbers that grow
// with every write. Unknown values (the id of a create that never answered, the version after an
// update that timed out) are left open and bound by the first answer that shows them.
import type { Model, Operation } from "./history.js";

export type ServiceOpName = "create" | "update" | "delete" | "get";

export interface ServiceInput {
  /** The service name: the object this operation is about (the partition key). */
  name: string;
  /** Address one incarnation by id instead of the name (update, delete, get). */
  id?: string;
  /** update: the version the client read. */
  version?: number;
  /** create, update: any JSON value; compared by its canonical JSON. */
  spec?: unknown;
  /** get: a read that may be served from a cache (`?stale=true`), not ordered with the rest. */
  stale?: boolean;
}

export interface ServiceOutput {
  id?: string;
  version?: number;
  spec?: unknown;
  /** fail: the error code the server answered. */
  code?: string;
}

export type ServiceOp = Operation<ServiceInput, ServiceOutput> & { op: ServiceOpName };

/**
 * `gone`: the ids of incarnations of this name already deleted, sorted, each followed by U+0003
 * (so that the search's state key needs no join). Ids never come back, so
 * no later incarnation may show one: without this, an incarnation whose id is unknown (its create
 * never answered) could take the id of one deleted before or after it, and a delete could then be
 * ordered before the create that made the very id it deleted.
 * `floor`: the highest version known so far on this name, in any incarnation. Versions never come
 * back either: a version still unknown (a write that never answered) lies above it, and so does
 * the version of a later create.
 */
export type ServiceState = ({ present: false } | { present: true; id?: string; version?: number; spec: string }) & { gone?: string; floor?: number };

export interface ServiceModelOptions {
  /**
   * Whether the system itself may write a service between client operations without changing its
   * spec (Baton's updater records a rolling update's progress on the service, which moves its
   * version). Then a read may show a higher version than the last write made, and an update may
   * meet VERSION_CONFLICT although its version was the last one a client saw. Specs stay exact:
   * a lost or invented write is still caught. @default false
   */
  systemWrites?: boolean;
}

/** Canonical JSON: object keys sorted, so equal specs compare equal whatever their key order. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "undefined";
}

const ABSENT: ServiceState = { present: false };

const SEP = "\u0003";
const isGone = (s: ServiceState, id: string | undefined): boolean => id !== undefined && s.gone !== undefined && (s.gone.startsWith(id + SEP) || s.gone.includes(SEP + id + SEP));
/** `next` with the deleted ids and the version floor of `s`, plus `id` if given (kept sorted: equal sets, equal keys). */
function withGone(s: ServiceState, next: ServiceState, id?: string): ServiceState {
  let gone = s.gone;
  if (id !== undefined && !isGone(s, id)) gone = [...(gone ? gone.slice(0, -1).split(SEP) : []), id].sort().join(SEP) + SEP;
  const known = next.present ? next.version : undefined;
  const floor = known !== undefined && (s.floor === undefined || known > s.floor) ? known : s.floor;
  if (gone !== undefined) (next as { gone?: string }).gone = gone;
  if (floor !== undefined) next.floor = floor;
  return next;
}
/** Whether `v` may be the version of a write made now, or the still unknown one of the last write. */
const above = (s: ServiceState, v: number | undefined): boolean => v === undefined || s.floor === undefined || v > s.floor;
/** The state after deleting the incarnation `s` (whose id is `id` when known). */
const deleted = (s: ServiceState, id: string | undefined): ServiceState => withGone(s, { present: false }, id);

export function serviceModel(opts: ServiceModelOptions = {}): Model<ServiceState, ServiceOp> {
  const systemWrites = opts.systemWrites === true;

  /**
   * Whether `op` addresses this incarnation (by name it always does; by id only if the ids match,
   * or the id is unknown and not one of an incarnation already deleted).
   */
  const addresses = (s: ServiceState & { present: true }, op: ServiceOp): boolean =>
    op.input.id === undefined || (s.id === undefined ? !isGone(s, op.input.id) : s.id === op.input.id);
  /** Whether an answer showing id `id` may come from this incarnation. */
  const mayBe = (s: ServiceState & { present: true }, id: string | undefined): boolean => id === undefined || (s.id === undefined ? !isGone(s, id) : s.id === id);
  const bindId = (s: ServiceState & { present: true }, op: ServiceOp): ServiceState => (op.input.id !== undefined && s.id === undefined ? { ...s, id: op.input.id } : s);
  /** Whether an update read at `v` may apply now (the current version may have moved on by itself). */
  const mayMatch = (s: ServiceState & { present: true }, v: number | undefined): boolean =>
    v === undefined || (s.version === undefined ? above(s, v) : systemWrites ? v >= s.version : v === s.version);
  const mayDiffer = (s: ServiceState & { present: true }, v: number | undefined): boolean => v === undefined || s.version === undefined || systemWrites || v !== s.version;

  function step(s: ServiceState, op: ServiceOp): ServiceState[] {
    const { input, output, outcome } = op;
    const code = outcome === "fail" ? output?.code : undefined;
    switch (op.op) {
      case "create": {
        const spec = canonical(input.spec);
        if (outcome === "timeout") return [s.present ? s : withGone(s, { present: true, spec })];
        if (outcome === "ok") {
          if (s.present || isGone(s, output?.id) || !above(s, output?.version)) return [];
          return [withGone(s, { present: true, spec, ...(output?.id !== undefined ? { id: output.id } : {}), ...(output?.version !== undefined ? { version: output.version } : {}) })];
        }
        if (code === "NAME_IN_USE") return s.present ? [s] : [];
        return [s]; // any other refusal: no effect, and no claim about the state
      }
      case "update": {
        const spec = canonical(input.spec);
        if (outcome === "timeout") {
          if (!s.present || !addresses(s, op)) return [s];
          const out: ServiceState[] = [];
          if (mayMatch(s, input.version)) out.push(withGone(s, { present: true, spec, ...(s.id !== undefined ? { id: s.id } : input.id !== undefined ? { id: input.id } : {}) }));
          if (mayDiffer(s, input.version)) out.push(s);
          return out;
        }
        if (outcome === "ok") {
          if (!s.present || !addresses(s, op) || !mayMatch(s, input.version)) return [];
          if (output?.version !== undefined && input.version !== undefined && output.version <= input.version) return [];
          if (!mayBe(s, output?.id) || !above(s, output?.version)) return [];
          const bound = { ...(bindId(s, op) as ServiceState & { present: true }), ...(output?.id !== undefined ? { id: output.id } : {}) };
          return [withGone(s, { present: true, spec, ...(bound.id !== undefined ? { id: bound.id } : {}), ...(output?.version !== undefined ? { version: output.version } : {}) })];
        }
        if (code === "VERSION_CONFLICT") return s.present && addresses(s, op) && mayDiffer(s, input.version) ? [bindId(s, op)] : [];
        if (code === "NOT_FOUND") return !s.present || (input.id !== undefined && s.id !== input.id) ? [s] : [];
        return [s];
      }
      case "delete": {
        if (outcome === "timeout") return s.present && addresses(s, op) ? [deleted(s, s.id ?? input.id)] : [s];
        if (outcome === "ok") return s.present && addresses(s, op) && mayBe(s, output?.id) ? [deleted(s, output?.id ?? s.id ?? input.id)] : [];
        if (code === "NOT_FOUND") return !s.present || (input.id !== undefined && s.id !== input.id) ? [s] : [];
        return [s];
      }
      case "get": {
        if (outcome === "timeout") return [s];
        if (outcome === "ok") {
          if (!s.present || !addresses(s, op) || output === undefined) return [];
          if (canonical(output.spec) !== s.spec) return [];
          if (!mayBe(s, output.id)) return [];
          const v = output.version;
          if (v !== undefined && (s.version === undefined ? !above(s, v) : systemWrites ? v < s.version : v !== s.version)) return [];
          return [withGone(s, { present: true, spec: s.spec, ...((output.id ?? s.id) !== undefined ? { id: (output.id ?? s.id)! } : {}), ...((v ?? s.version) !== undefined ? { version: (v ?? s.version)! } : {}) })];
        }
        if (code === "NOT_FOUND") return !s.present || (input.id !== undefined && s.id !== input.id) ? [s] : [];
        return [s];
      }
    }
  }

  function explainStep(s: ServiceState, op: ServiceOp): string {
    const code = op.outcome === "fail" ? op.output?.code : undefined;
    const shown = op.outcome === "ok" ? op.output?.id : undefined;
    if ((shown !== undefined && isGone(s, shown) && (!s.present || s.id === undefined)) || (op.input.id !== undefined && s.present && s.id === undefined && isGone(s, op.input.id)))
      return `id ${shown ?? op.input.id} belongs to an incarnation already deleted (ids never come back)`;
    const v = op.outcome === "ok" ? op.output?.version : undefined;
    if (v !== undefined && s.floor !== undefined && v <= s.floor && (!s.present || s.version === undefined || op.op === "create"))
      return `version ${v}, but version ${s.floor} was already seen on this name (versions never come back)`;
    if (op.op === "update" && op.input.version !== undefined && s.present && s.version === undefined && s.floor !== undefined && op.input.version <= s.floor)
      return `applied at version ${op.input.version}, but version ${s.floor} was already seen and a later write followed (versions never come back)`;
    if (!s.present) {
      if (op.op === "create" && code === "NAME_IN_USE") return "NAME_IN_USE, but no service has that name";
      return `${op.outcome === "ok" ? "succeeded" : code}, but no service has that name${op.op === "get" ? " (a read of a write that never happened, or of one already deleted)" : ""}`;
    }
    const cur = `the service holds ${describeState(s)}`;
    switch (op.op) {
      case "create":
        return `created, but ${cur} (the name was taken)`;
      case "update":
        if (code === "VERSION_CONFLICT") return `VERSION_CONFLICT at version ${op.input.version}, but that is the current version (${cur})`;
        if (code === "NOT_FOUND") return `NOT_FOUND, but ${cur}`;
        if (op.output?.version !== undefined && op.input.version !== undefined && op.output.version <= op.input.version) return `the new version ${op.output.version} is not above the one read (${op.input.version})`;
        if (op.output?.id !== undefined && s.id !== undefined && op.output.id !== s.id) return `updated id ${op.output.id}, but ${cur}`;
        return `applied at version ${op.input.version}, but ${cur}`;
      case "delete":
        return code === "NOT_FOUND" ? `NOT_FOUND, but ${cur}` : `deleted id ${op.output?.id}, but ${cur}`;
      case "get": {
        if (code === "NOT_FOUND") return `NOT_FOUND, but ${cur}`;
        const o = op.output ?? {};
        if (canonical(o.spec) !== s.spec) return `read spec ${short(canonical(o.spec))}, but ${cur} (a stale read, a lost write, or a read of a write that never happened)`;
        if (o.id !== s.id) return `read id ${o.id}, but ${cur}`;
        return `read version ${o.version}, but ${cur}${systemWrites ? " (versions never go back)" : ""}`;
      }
    }
  }

  function describeState(s: ServiceState): string {
    if (!s.present) return "absent";
    return `id=${s.id ?? "?"} version=${s.version ?? "?"} spec=${short(s.spec)}`;
  }

  return {
    partitionKey: (op) => `service "${op.input.name}"`,
    init: () => ABSENT,
    step,
    // No floor: it is the highest version any applied operation answered, so the applied set
    // (the other half of the search's memo key) determines it.
    stateKey: (s) => (s.present ? `P${s.id ?? "?"}\u0002${s.version ?? "?"}\u0002${s.spec}` : "A") + (s.gone === undefined ? "" : `\u0002${s.gone}`),
    isReadOnly: (op) => op.op === "get",
    // Versions and ids never come back: an update read at a version already passed, or an
    // operation on an incarnation already replaced, can never take effect again.
    isSpent(s, op) {
      if (op.input.id !== undefined && (op.op === "update" || op.op === "delete") && isGone(s, op.input.id)) return true;
      if (op.op === "update" && op.input.version !== undefined && s.floor !== undefined && op.input.version < s.floor) return true;
      if (!s.present || s.id === undefined) return false;
      if (op.input.id !== undefined && op.input.id !== s.id && (op.op === "update" || op.op === "delete")) return true;
      return op.op === "update" && op.input.version !== undefined && s.version !== undefined && op.input.version < s.version;
    },
    isUnordered: (op) => op.op === "get" && op.input.stale === true,
    checkUnordered(op, partition) {
      // A stale read may be old, but never invented: it shows a spec some create or update sent.
      if (op.outcome !== "ok") return undefined;
      const spec = canonical(op.output?.spec);
      const written = partition.some((w) => (w.op === "create" || w.op === "update") && w.outcome !== "fail" && canonical(w.input.spec) === spec && w.invokeAt <= (op.returnAt ?? Infinity));
      return written ? undefined : `spec ${short(spec)} was never written`;
    },
    describeOp,
    describeState,
    explainStep,
  };
}

function short(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

export function describeOp(op: ServiceOp): string {
  const i = op.input;
  const target = i.id !== undefined ? `${i.name}#${i.id}` : i.name;
  const args = [op.op === "update" ? `version=${i.version}` : "", i.spec !== undefined ? `spec=${short(canonical(i.spec))}` : "", i.stale ? "stale" : ""].filter(Boolean).join(" ");
  const o = op.output ?? {};
  const result =
    op.outcome === "timeout"
      ? `no answer${op.error ? ` (${op.error})` : ""}`
      : op.outcome === "fail"
        ? (o.code ?? "failed")
        : [o.id !== undefined ? `id=${o.id}` : "", o.version !== undefined ? `version=${o.version}` : "", op.op === "get" ? `spec=${short(canonical(o.spec))}` : ""].filter(Boolean).join(" ") || "ok";
  return `client ${op.client}: ${op.op} ${target}${args ? ` ${args}` : ""} → ${result}`;
}
