import { BatonError, type FieldProblem } from "../lib/errors.js";
import type { Service } from "../model/objects.js";
import type { FieldChange, UpdatePreview } from "../updater/dry-run.js";
import { composePathOf, NAMESPACE_LABEL, type StackObjectKind, type StackServiceInput, type StackSpec } from "./compose/translate.js";

/** A network, volume, secret or config as the API lists it (the fields a stack needs). */
export interface ApiObject {
  id: string;
  name: string;
  labels: Record<string, string>;
  /** Configs only: the content, base64. */
  data?: string;
}

/** What a stack deploy needs from the API; the CLI implements it over the REST API, tests with a fake. */
export interface StackApi {
  listServices(): Promise<Service[]>;
  /** All objects of a kind; [] when this API has none of that kind. */
  listObjects(kind: StackObjectKind): Promise<ApiObject[]>;
  /** By name; undefined when it does not exist. */
  getObject(kind: StackObjectKind, name: string): Promise<ApiObject | undefined>;
  createObject(kind: StackObjectKind, body: Record<string, unknown>): Promise<void>;
  /** Whether a secret's stored content is `data` (base64); the API answers only true or false. */
  sameSecretData(name: string, data: string): Promise<boolean>;
  removeObject(kind: StackObjectKind, name: string): Promise<void>;
  createService(input: StackServiceInput): Promise<Service>;
  /** The API's dry run of a create: every check a create makes, every problem at once; nothing written. */
  previewCreate(input: StackServiceInput): Promise<unknown>;
  /** The API's dry run of an update: validates the whole body, answers the field diff. */
  previewUpdate(svc: Service, input: StackServiceInput): Promise<UpdatePreview>;
  updateService(svc: Service, input: StackServiceInput): Promise<Service>;
  removeService(svc: Service): Promise<void>;
}

export type StepKind = StackObjectKind | "service";

export type PlanStep =
  | { kind: StackObjectKind; action: "create"; name: string; body: Record<string, unknown> }
  | { kind: StackObjectKind; action: "exists"; name: string; note: string }
  | { kind: "service"; action: "create"; name: string; input: StackServiceInput }
  | { kind: "service"; action: "update"; name: string; input: StackServiceInput; service: Service; preview: UpdatePreview }
  /** An update whose new secrets/configs this deploy creates first: the API can only preview it once they exist. */
  | { kind: "service"; action: "update"; name: string; input: StackServiceInput; service: Service; preview?: undefined; changes: FieldChange[]; awaits: string[] }
  | { kind: "service"; action: "unchanged"; name: string; service: Service }
  | { kind: "service"; action: "remove"; name: string; service: Service };

export const stackOf = (labels: Record<string, string> | undefined): string | undefined => labels?.[NAMESPACE_LABEL];

/** JSON with sorted keys: two bodies that differ only in key order are the same. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object") return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(",")}}`;
  return JSON.stringify(v);
}

/**
 * What a deploy would do, found with reads only (the API's update dry run included), and every
 * problem that must stop it: a missing external object, a name taken by something outside the
 * stack, a secret or config whose content changed (both are immutable, as docker's), a service
 * body the API refuses. Nothing is written.
 */
export async function planStackDeploy(api: StackApi, spec: StackSpec, opts: { prune: boolean }): Promise<{ steps: PlanStep[]; problems: FieldProblem[] }> {
  const ns = spec.namespace;
  const problems: FieldProblem[] = [];
  const steps: PlanStep[] = [];
  const section = (k: StackObjectKind): string => `${k}s`;

  for (const o of spec.objects) {
    const existing = await api.getObject(o.kind, o.name);
    if (o.external) {
      if (!existing) problems.push({ path: [section(o.kind), o.key, "external"], problem: `external ${o.kind} "${o.name}" does not exist: create it first (baton ${o.kind} create ${o.name} …)${o.location}` });
      else steps.push({ kind: o.kind, action: "exists", name: o.name, note: "external" });
      continue;
    }
    if (!existing) {
      steps.push({ kind: o.kind, action: "create", name: o.name, body: o.body! });
      continue;
    }
    if (stackOf(existing.labels) !== ns) {
      problems.push({ path: [section(o.kind), o.key], problem: `a ${o.kind} named "${o.name}" exists and does not belong to stack ${ns}: use external: true to use it${o.location}` });
      continue;
    }
    // The API never answers a secret's data: it only says whether it is the file's.
    const data = o.body?.data;
    const changed = typeof data !== "string" ? false : o.kind === "config" ? existing.data !== undefined && existing.data !== data : o.kind === "secret" ? !(await api.sameSecretData(o.name, data)) : false;
    if (changed) {
      problems.push({ path: [section(o.kind), o.key], problem: `${o.kind} "${o.name}" exists with other content; ${o.kind}s are immutable: rename it (e.g. ${o.key}_v2) to rotate${o.location}` });
      continue;
    }
    steps.push({ kind: o.kind, action: "exists", name: o.name, note: o.kind === "secret" || o.kind === "config" ? "kept, same content" : "kept" });
  }

  const services = await api.listServices();
  const byName = new Map(services.map((s) => [s.spec.name, s]));
  for (const s of spec.services) {
    const current = byName.get(s.input.name);
    if (!current) {
      // Checked by the API as a create would be (a port held outside the stack, a bad
      // constraint…), so a deploy never stops half-applied on a new service.
      try {
        await api.previewCreate(s.input);
      } catch (err) {
        problems.push(...refusals(err, steps, s.input).map((f) => located(spec, s.key, f)));
      }
      steps.push({ kind: "service", action: "create", name: s.input.name, input: s.input });
      continue;
    }
    if (stackOf(current.spec.labels) !== ns) {
      problems.push({ path: ["services", s.key], problem: `a service named "${s.input.name}" exists and does not belong to stack ${ns}${spec.locate(["services", s.key])}` });
      continue;
    }
    if (canonical(current.specInput) === canonical(s.input)) {
      steps.push({ kind: "service", action: "unchanged", name: s.input.name, service: current });
      continue;
    }
    try {
      const preview = await api.previewUpdate(current, s.input);
      const changed = preview.changes.length > 0 || preview.replicas !== undefined || preview.specVersion.to !== preview.specVersion.from;
      steps.push(changed ? { kind: "service", action: "update", name: s.input.name, input: s.input, service: current, preview } : { kind: "service", action: "unchanged", name: s.input.name, service: current });
    } catch (err) {
      const left = refusals(err, steps, s.input);
      if (!left.length) {
        // Only references to objects this deploy creates first: the update itself is checked when applied.
        const fields = (err as BatonError).fields.map((f) => (f.path[0] === "spec" ? f.path.slice(1) : f.path));
        const awaits = fields.map((p) => createdHere(steps, s.input, p)!);
        steps.push({ kind: "service", action: "update", name: s.input.name, input: s.input, service: current, changes: inputChanges(current.specInput, s.input), awaits: [...new Set(awaits)] });
        continue;
      }
      problems.push(...left.map((f) => located(spec, s.key, f)));
    }
  }
  problems.push(...portsPublishedTwice(spec, steps));
  if (opts.prune) {
    const wanted = new Set(spec.services.map((s) => s.input.name));
    for (const s of services) if (stackOf(s.spec.labels) === ns && !wanted.has(s.spec.name)) steps.push({ kind: "service", action: "remove", name: s.spec.name, service: s });
  }
  return { steps, problems };
}

/**
 * The problems of an API refusal (a dry run's) that stop the deploy, paths relative to the
 * service body: a reference to a secret, config or network an earlier step creates is not one.
 */
function refusals(err: unknown, steps: PlanStep[], input: StackServiceInput): FieldProblem[] {
  if (!(err instanceof BatonError) || err.code !== "VALIDATION_FAILED") throw err;
  return err.fields.map((f) => ({ ...f, path: f.path[0] === "spec" ? f.path.slice(1) : f.path })).filter((f) => createdHere(steps, input, f.path) === undefined);
}

/** A problem of service `key`'s body at its path in the stack file, with its line. */
function located(spec: StackSpec, key: string, f: FieldProblem): FieldProblem {
  const path = composePathOf(key, f.path);
  return { path, problem: `${f.problem}${spec.locate(path)}` };
}

/**
 * Two services of the file that would publish the same port (each alone passes the API's dry
 * run; the second write would fail). A service kept unchanged keeps its port.
 */
function portsPublishedTwice(spec: StackSpec, steps: PlanStep[]): FieldProblem[] {
  const applied = new Set(steps.filter((st) => st.kind === "service" && st.action !== "remove").map((st) => st.name));
  const first = new Map<string, string>();
  const problems: FieldProblem[] = [];
  for (const s of spec.services) {
    if (!applied.has(s.input.name)) continue;
    (s.input.publish ?? []).forEach((p, i) => {
      const key = publishedKey(p);
      if (!key) return;
      const other = first.get(key);
      if (other === undefined) return void first.set(key, s.key);
      const path = composePathOf(s.key, ["publish", i, "published"]);
      problems.push({ path, problem: `${key} is also published by service ${other} of this file${spec.locate(path)}` });
    });
  }
  return problems;
}

/** "8080/tcp" for a published port of a service body (short "8080:80[/udp]" or long form); undefined when only a target. */
function publishedKey(p: unknown): string | undefined {
  if (typeof p === "string") {
    const m = /^(?:[^:]*:)?(\d+):\d+(?:\/(tcp|udp|http))?$/.exec(p);
    return m ? `${m[1]}/${m[2] === "udp" ? "udp" : "tcp"}` : undefined;
  }
  if (p && typeof p === "object" && "published" in p && (p as { published?: unknown }).published !== undefined) {
    const q = p as { published: unknown; protocol?: string };
    return `${String(q.published)}/${q.protocol === "udp" ? "udp" : "tcp"}`;
  }
  return undefined;
}

/**
 * "config NAME" when a refused field is the source of a secret or config reference that an
 * earlier step of the plan creates (the API's dry run cannot see it yet); else undefined.
 */
function createdHere(steps: PlanStep[], input: StackServiceInput, path: (string | number)[]): string | undefined {
  const [field, index, leaf] = path;
  if (field === "networks" && typeof index === "number" && path.length === 2) {
    const name = input.networks?.[index];
    return steps.some((st) => st.kind === "network" && st.action === "create" && st.name === name) ? `network ${name}` : undefined;
  }
  if ((field !== "secrets" && field !== "configs") || typeof index !== "number" || leaf !== "source" || path.length !== 3) return undefined;
  const name = input[field]?.[index]?.source;
  const kind = field === "secrets" ? "secret" : "config";
  return steps.some((st) => st.kind === kind && st.action === "create" && st.name === name) ? `${kind} ${name}` : undefined;
}

/** Leaves of a JSON value as dotted paths (arrays whole). */
function leaves(v: unknown, prefix: string, out: Map<string, unknown>): Map<string, unknown> {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) leaves(x, prefix ? `${prefix}.${k}` : k, out);
  else out.set(prefix, v);
  return out;
}

/** The field diff of two service bodies as the stack wrote them, for a plan the API could not preview. */
function inputChanges(from: unknown, to: unknown): FieldChange[] {
  const a = leaves(from, "", new Map());
  const b = leaves(to, "", new Map());
  return [...new Set([...a.keys(), ...b.keys()])]
    .sort()
    .filter((p) => canonical(a.get(p)) !== canonical(b.get(p)))
    .map((path) => ({ path, from: a.get(path), to: b.get(path) }));
}

/** A deploy that stopped part-way: what was applied, what failed, what was not tried. */
export class DeployStopped extends Error {
  constructor(
    readonly applied: PlanStep[],
    readonly failed: PlanStep,
    readonly notApplied: PlanStep[],
    override readonly cause: unknown,
  ) {
    super(`${describeStep(failed)} failed: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

export const describeStep = (s: PlanStep): string => `${s.action} ${s.kind} ${s.name}`;

/**
 * Applies a plan in order: networks, volumes, secrets, configs, then services (dependencies
 * first), then removals. Returns the services created or updated, for the caller to follow.
 */
export async function applyStackPlan(api: StackApi, steps: PlanStep[], onStep: (s: PlanStep) => void = () => {}): Promise<{ step: PlanStep; service: Service }[]> {
  const applied: PlanStep[] = [];
  const touched: { step: PlanStep; service: Service }[] = [];
  const todo = steps.filter((s) => s.action !== "exists" && s.action !== "unchanged");
  for (const [i, step] of todo.entries()) {
    try {
      onStep(step);
      if (step.kind !== "service") {
        if (step.action === "create") await api.createObject(step.kind, step.body);
      } else if (step.action === "create") touched.push({ step, service: await api.createService(step.input) });
      else if (step.action === "update") touched.push({ step, service: await api.updateService(step.service, step.input) });
      else if (step.action === "remove") await api.removeService(step.service);
      applied.push(step);
    } catch (err) {
      throw new DeployStopped(applied, step, todo.slice(i + 1), err);
    }
  }
  return touched;
}

/**
 * `stack rm`: the stack's services first (their tasks stop), then the networks, secrets and
 * configs it created, found by the namespace label. External objects never carry it. Volumes are
 * kept, as docker keeps them: they hold data.
 */
export async function removeStack(api: StackApi, ns: string, onRemove: (kind: StepKind, name: string) => void = () => {}): Promise<{ removed: number; keptVolumes: string[]; failures: string[] }> {
  let removed = 0;
  const failures: string[] = [];
  for (const s of await api.listServices()) {
    if (stackOf(s.spec.labels) !== ns) continue;
    await api.removeService(s);
    onRemove("service", s.spec.name);
    removed++;
  }
  for (const kind of ["network", "secret", "config"] as const) {
    for (const o of await api.listObjects(kind)) {
      if (stackOf(o.labels) !== ns) continue;
      try {
        await api.removeObject(kind, o.name);
        onRemove(kind, o.name);
        removed++;
      } catch (err) {
        failures.push(`${kind} ${o.name}: ${(err as Error).message}`);
      }
    }
  }
  const keptVolumes = (await api.listObjects("volume")).filter((v) => stackOf(v.labels) === ns).map((v) => v.name);
  return { removed, keptVolumes, failures };
}
