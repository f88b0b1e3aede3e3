import { readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, resolve } from "node:path";
import type { FieldProblem } from "../../lib/errors.js";
import { parseBytes } from "../../input/bytes.js";
import { parseConstraint } from "../../model/constraints.js";
import type { ServiceSpecInput } from "../../input/schemas.js";
import { parseDotenv } from "./dotenv.js";
import type { Lookup } from "./interpolate.js";
import type { Path } from "./lines.js";
import type { ComposeFile, ComposeService } from "./schema.js";
import { joinWords, splitWords } from "./words.js";

/** The label docker puts on everything a stack creates; `stack ls/rm` find objects by it. */
export const NAMESPACE_LABEL = "com.docker.stack.namespace";

/** A service's reference to a secret or config, in the API's form (issue 13's contract). */
export interface ObjectRefInput {
  source: string;
  target?: string;
  mode?: number;
  uid?: string;
  gid?: string;
}
export interface MountInput {
  type: "volume" | "bind" | "tmpfs";
  source?: string;
  target: string;
  readOnly?: boolean;
  tmpfsSize?: string;
}

/** The service body a stack sends: the API's ServiceSpecInput plus the fields of networks, volumes, secrets and configs. */
export type StackServiceInput = ServiceSpecInput & {
  secrets?: ObjectRefInput[];
  configs?: ObjectRefInput[];
  networks?: string[];
  mounts?: MountInput[];
  endpointMode?: "vip" | "dnsrr";
};

export type StackObjectKind = "network" | "volume" | "secret" | "config";

/** A top-level network, volume, secret or config: created by the stack, or external (must exist). */
export interface StackObject {
  kind: StackObjectKind;
  /** Its key in the file. */
  key: string;
  /** Its name in Baton: `STACK_key`, or its own name when external or named. */
  name: string;
  external: boolean;
  /** The API body that creates it (absent when external). */
  body?: Record<string, unknown>;
  /** Where the file declares it, for messages: " (line 40)". */
  location: string;
}

export interface StackService {
  key: string;
  input: StackServiceInput;
  dependsOn: string[];
}

export interface StackSpec {
  namespace: string;
  /** In creation order: a service after the ones it depends on. */
  services: StackService[];
  objects: StackObject[];
  warnings: string[];
  /** " (line 12)" for a path of the file, for problems found later (by the API). */
  locate(path: Path): string;
}

export interface TranslateContext {
  namespace: string;
  /** Directory relative paths resolve against. */
  dir: string;
  env: Lookup;
  locate(path: Path): string;
  /** Every service of the file, for depends_on, when `file` has lost some to schema problems. */
  serviceKeys?: string[];
}

/** Secret and config files are read by the CLI; the API has its own, smaller limit. */
const MAX_OBJECT_FILE_BYTES = 1024 * 1024;

type Obj = Record<string, unknown>;

/** `["A=1","B"]` or `{A: 1, B: null}` → entries; a value of null/undefined means "take it from the environment". */
function entriesOf(v: unknown): [string, string | null][] {
  if (Array.isArray(v)) {
    return (v as string[]).map((e) => {
      const eq = e.indexOf("=");
      return eq < 0 ? [e, null] : [e.slice(0, eq), e.slice(eq + 1)];
    });
  }
  return Object.entries((v ?? {}) as Obj).map(([k, x]) => [k, x === null || x === undefined ? null : String(x)]);
}

function labelsOf(v: unknown): Record<string, string> {
  return Object.fromEntries(entriesOf(v).map(([k, x]) => [k, x ?? ""]));
}

const camelToSnake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * Where a field of the API's service body came from in the stack file: problems the API's own
 * validation finds are reported at the stack file's path.
 */
export function composePathOf(serviceKey: string, inputPath: Path): Path {
  const [field, ...rest] = inputPath;
  const base: Path = ["services", serviceKey];
  const snake = rest.map((p) => (typeof p === "string" ? camelToSnake(p) : p));
  const table: Record<string, Path> = {
    name: [],
    replicas: ["deploy", "replicas"],
    mode: ["deploy", "mode"],
    env: ["environment"],
    workdir: ["working_dir"],
    restartPolicy: ["deploy", "restart_policy"],
    publish: ["ports"],
    update: ["deploy", "update_config"],
    rollback: ["deploy", "rollback_config"],
    stopSignal: ["stop_signal"],
    stopGracePeriod: ["stop_grace_period"],
    constraints: ["deploy", "placement", "constraints"],
    placementPrefs: ["deploy", "placement", "preferences"],
    maxReplicasPerNode: ["deploy", "placement", "max_replicas_per_node"],
    reserveCpus: ["deploy", "resources", "reservations", "cpus"],
    reserveMemory: ["deploy", "resources", "reservations", "memory"],
    limitCpus: ["deploy", "resources", "limits", "cpus"],
    limitMemory: ["deploy", "resources", "limits", "memory"],
    labels: ["deploy", "labels"],
    mounts: ["volumes"],
    endpointMode: ["deploy", "endpoint_mode"],
  };
  const mapped = table[String(field)];
  return mapped ? [...base, ...mapped, ...snake] : [...base, ...(field === undefined ? [] : [String(field)]), ...snake];
}

/** Compose stack file (schema-valid) → the API bodies of a stack. Every problem names its path and line. */
export function translateStack(file: ComposeFile, ctx: TranslateContext): { spec: StackSpec; problems: FieldProblem[] } {
  const problems: FieldProblem[] = [];
  const warnings: string[] = [];
  const fail = (path: Path, problem: string): void => void problems.push({ path, problem: `${problem}${ctx.locate(path)}` });
  const ns = ctx.namespace;
  const nsLabel = { [NAMESPACE_LABEL]: ns };
  const objects: StackObject[] = [];
  const names = { network: new Map<string, string>(), volume: new Map<string, string>(), secret: new Map<string, string>(), config: new Map<string, string>() };

  const topLevel = (kind: StackObjectKind, section: "networks" | "volumes" | "secrets" | "configs"): void => {
    for (const [key, raw] of Object.entries((file[section] ?? {}) as Record<string, Obj | null>)) {
      if (key.startsWith("x-")) continue;
      const def = raw ?? {};
      const path: Path = [section, key];
      const ext = def.external as boolean | { name?: string } | undefined;
      const external = ext === true || (typeof ext === "object" && ext !== null);
      const name = external ? ((typeof ext === "object" ? ext.name : undefined) ?? (def.name as string | undefined) ?? key) : ((def.name as string | undefined) ?? `${ns}_${key}`);
      names[kind].set(key, name);
      if (external) {
        const extra = Object.keys(def).filter((k) => !["external", "name"].includes(k) && !k.startsWith("x-"));
        if (extra.length) fail([...path, extra[0]!], `an external ${kind} is only referenced: ${extra.join(", ")} cannot be set here`);
        objects.push({ kind, key, name, external: true, location: ctx.locate([...path, "external"]) });
        continue;
      }
      const labels = { ...labelsOf(def.labels), ...nsLabel };
      let body: Record<string, unknown> = { name, labels };
      if (kind === "network") body = { ...body, driver: def.driver ?? "overlay", ...(def.internal !== undefined ? { internal: def.internal } : {}), ...(def.attachable !== undefined ? { attachable: def.attachable } : {}) };
      if (kind === "volume") body = { ...body, driver: def.driver ?? "local" };
      if (kind === "secret" || kind === "config") {
        const data = objectData(kind, def, path);
        if (data === undefined) continue;
        body = { ...body, data: data.toString("base64") };
      }
      objects.push({ kind, key, name, external: false, body, location: ctx.locate(path) });
    }
  };

  /** A secret's or config's content: from `file`, `environment` or (configs) `content`; exactly one. */
  const objectData = (kind: "secret" | "config", def: Obj, path: Path): Buffer | undefined => {
    const sources = ["file", "environment", ...(kind === "config" ? ["content"] : [])].filter((k) => def[k] !== undefined);
    if (kind === "secret" && def.content !== undefined) {
      fail([...path, "content"], "a secret's data cannot be written in the stack file: use file or environment");
      return undefined;
    }
    if (sources.length !== 1) {
      fail(path, `give exactly one of ${kind === "config" ? "file, content, environment" : "file, environment"} or external: true`);
      return undefined;
    }
    if (def.file !== undefined) {
      const p = resolveHostPath(String(def.file));
      try {
        const size = statSync(p).size;
        if (size > MAX_OBJECT_FILE_BYTES) {
          fail([...path, "file"], `${p} is ${size} bytes; at most ${MAX_OBJECT_FILE_BYTES}`);
          return undefined;
        }
        return readFileSync(p);
      } catch (err) {
        fail([...path, "file"], `cannot read ${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        return undefined;
      }
    }
    if (def.environment !== undefined) {
      const v = ctx.env(String(def.environment));
      if (v === undefined) {
        fail([...path, "environment"], `the variable ${String(def.environment)} is not set`);
        return undefined;
      }
      return Buffer.from(v, "utf8");
    }
    return Buffer.from(String(def.content), "utf8");
  };

  /** A host path of the file: ~ is the home directory, relative paths start at the file's directory. */
  const resolveHostPath = (p: string): string => (p === "~" || p.startsWith("~/") ? resolve(homedir(), p.slice(2)) : isAbsolute(p) ? p : resolve(ctx.dir, p));

  topLevel("network", "networks");
  topLevel("volume", "volumes");
  topLevel("secret", "secrets");
  topLevel("config", "configs");

  const services: StackService[] = [];
  const serviceKeys = ctx.serviceKeys ?? Object.keys(file.services);
  for (const [key, svc] of Object.entries(file.services)) {
    const input = translateService(key, svc);
    if (input) services.push(input);
  }

  function translateService(key: string, s: ComposeService): StackService | undefined {
    const at = (...p: Path): Path => ["services", key, ...p];
    const before = problems.length;
    const driver = s["x-baton"]?.driver ?? (s.image !== undefined ? "docker" : undefined);
    if (driver === undefined) fail(at("image"), "is required (or run a command on the process driver: x-baton: {driver: process})");
    if (driver === "process" && s.image !== undefined) fail(at("image"), "x-baton driver process runs a command, not an image: remove image or the driver");
    if (driver === "docker" && s.image === undefined) fail(at("image"), "is required for the docker driver");
    const words = (v: string | string[] | undefined, field: string): string[] | undefined => {
      if (v === undefined) return undefined;
      if (Array.isArray(v)) return v;
      try {
        return splitWords(v);
      } catch (err) {
        fail(at(field), (err as Error).message);
        return undefined;
      }
    };
    const command = words(s.command, "command") ?? [];
    if (driver === "process" && command.length === 0) fail(at("command"), "the process driver needs a command");
    const entrypoint = words(s.entrypoint, "entrypoint");
    if (driver === "process" && entrypoint) fail(at("entrypoint"), "only containers have an entrypoint: put it in command");

    // env_file first, environment over it; a variable without a value comes from the environment or is left out.
    const env = new Map<string, string>();
    const envFiles = s.env_file === undefined ? [] : Array.isArray(s.env_file) ? s.env_file : [s.env_file];
    envFiles.forEach((f, i) => {
      const { path, required } = typeof f === "string" ? { path: f, required: true } : { path: f.path, required: f.required ?? true };
      const p = resolveHostPath(path);
      const fieldPath = Array.isArray(s.env_file) ? at("env_file", i) : at("env_file");
      try {
        if (statSync(p).size > MAX_OBJECT_FILE_BYTES) throw Object.assign(new Error("too large"), { code: `larger than ${MAX_OBJECT_FILE_BYTES} bytes` });
        for (const [k, v] of parseDotenv(readFileSync(p, "utf8"), p)) env.set(k, v);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code === "ENOENT" && !required) return;
        fail(fieldPath, e.code ? `cannot read ${p}: ${e.code}` : e.message);
      }
    });
    for (const [k, v] of entriesOf(s.environment)) {
      const value = v ?? ctx.env(k);
      if (value === undefined) env.delete(k);
      else env.set(k, value);
    }

    const d = s.deploy ?? {};
    if (d.mode === "global" && d.replicas !== undefined) fail(at("deploy", "replicas"), "a global service runs one task per node: remove replicas");
    const updateConfig = (u: NonNullable<typeof d.update_config>): NonNullable<ServiceSpecInput["update"]> => ({
      ...(u.parallelism !== undefined ? { parallelism: u.parallelism } : {}),
      ...(u.delay !== undefined ? { delay: u.delay } : {}),
      ...(u.failure_action !== undefined ? { failureAction: u.failure_action } : {}),
      ...(u.monitor !== undefined ? { monitor: u.monitor } : {}),
      ...(u.max_failure_ratio !== undefined ? { maxFailureRatio: u.max_failure_ratio } : {}),
      ...(u.order !== undefined ? { order: u.order } : {}),
    });
    if (d.rollback_config?.failure_action === "rollback") fail(at("deploy", "rollback_config", "failure_action"), "a rollback cannot roll back: use pause or continue");
    const rp = d.restart_policy;
    const constraints = d.placement?.constraints ?? [];
    constraints.forEach((c, i) => {
      const r = parseConstraint(c);
      if (typeof r === "string") fail(at("deploy", "placement", "constraints", i), r);
    });
    const prefs = (d.placement?.preferences ?? []).map((p, i) => {
      if (!/^node\.(id|hostname|role|platform\.os|platform\.arch|labels\.[A-Za-z0-9_.-]+)$/.test(p.spread.trim())) fail(at("deploy", "placement", "preferences", i, "spread"), `"${p.spread}" is not node.labels.<name> (or node.hostname, node.role, node.platform.os/arch)`);
      return `spread=${p.spread.trim()}`;
    });
    const cpus = (v: string | number | undefined, path: Path): number | undefined => {
      if (v === undefined) return undefined;
      const n = typeof v === "number" ? v : /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : NaN;
      // 0 is no limit, as in docker.
      if (!Number.isFinite(n) || n < 0 || n > 4096) {
        fail(path, `"${v}" is not a number of CPUs (e.g. '0.5', '2')`);
        return undefined;
      }
      return n;
    };
    const memory = (v: string | number | undefined, path: Path): string | undefined => {
      if (v === undefined) return undefined;
      const text = String(v);
      if (parseBytes(text) === undefined) {
        fail(path, `"${text}" is not a size (e.g. 256M, 1.5G, 512k or bytes)`);
        return undefined;
      }
      return text;
    };
    const limits = d.resources?.limits;
    const reservations = d.resources?.reservations;
    const limitCpus = cpus(limits?.cpus, at("deploy", "resources", "limits", "cpus"));
    const limitMemory = memory(limits?.memory, at("deploy", "resources", "limits", "memory"));
    const reserveCpus = cpus(reservations?.cpus, at("deploy", "resources", "reservations", "cpus"));
    const reserveMemory = memory(reservations?.memory, at("deploy", "resources", "reservations", "memory"));

    const publish = (s.ports ?? []).flatMap((p, i) => {
      const port = portOf(p, (problem) => fail(at("ports", i), problem));
      return port ? [port] : [];
    });

    const refName = (kind: StackObjectKind, section: string, ref: string, path: Path): string | undefined => {
      const name = names[kind].get(ref);
      if (name === undefined) fail(path, `${kind} "${ref}" is not declared in the top-level ${section}`);
      return name;
    };
    const objectRefs = (kind: "secret" | "config", refs: ComposeService["secrets"]): ObjectRefInput[] =>
      (refs ?? []).flatMap((r, i) => {
        const long = typeof r === "string" ? { source: r } : r;
        const source = refName(kind, `${kind}s`, long.source, typeof r === "string" ? at(`${kind}s`, i) : at(`${kind}s`, i, "source"));
        if (source === undefined) return [];
        // docker names the file after the key in the stack file, not the namespaced object.
        return [{ source, target: long.target ?? long.source, ...(long.mode !== undefined ? { mode: long.mode } : {}), ...(long.uid !== undefined ? { uid: long.uid } : {}), ...(long.gid !== undefined ? { gid: long.gid } : {}) }];
      });

    const networkKeys = s.networks === undefined ? [] : Array.isArray(s.networks) ? s.networks : Object.keys(s.networks).filter((k) => !k.startsWith("x-"));
    const networks = networkKeys.flatMap((n, i) => {
      const name = refName("network", "networks", n, Array.isArray(s.networks) ? at("networks", i) : at("networks", n));
      return name ? [name] : [];
    });

    const mounts: MountInput[] = [];
    (s.volumes ?? []).forEach((v, i) => {
      const m = mountOf(v, at("volumes", i));
      if (m) mounts.push(m);
    });
    for (const t of s.tmpfs === undefined ? [] : Array.isArray(s.tmpfs) ? s.tmpfs : [s.tmpfs]) mounts.push({ type: "tmpfs", target: t });

    function mountOf(v: string | Exclude<NonNullable<ComposeService["volumes"]>[number], string>, path: Path): MountInput | undefined {
      if (typeof v === "string") {
        const parts = v.split(":");
        if (parts.length === 1) return { type: "volume", target: parts[0]! };
        if (parts.length > 3) {
          fail(path, `"${v}" is not SOURCE:TARGET[:ro]`);
          return undefined;
        }
        const [source, target, mode = "rw"] = parts as [string, string, string?];
        const options = mode.split(",");
        const unknown = options.filter((o) => !["ro", "rw", "z", "Z", "nocopy", "cached", "delegated", "consistent"].includes(o));
        if (unknown.length || !target) {
          fail(path, `"${v}": ${target ? `unknown option ${unknown.join(",")} (use ro or rw)` : "the target is empty"}`);
          return undefined;
        }
        const readOnly = options.includes("ro") ? { readOnly: true } : {};
        if (/^[./~]/.test(source)) return { type: "bind", source: resolveHostPath(source), target, ...readOnly };
        const name = refName("volume", "volumes", source, path);
        return name ? { type: "volume", source: name, target, ...readOnly } : undefined;
      }
      const readOnly = v.read_only ? { readOnly: true } : {};
      if (v.type === "tmpfs") {
        if (v.source !== undefined) fail([...path, "source"], "a tmpfs mount has no source");
        const size = v.tmpfs?.size === undefined ? undefined : memory(v.tmpfs.size, [...path, "tmpfs", "size"]);
        return { type: "tmpfs", target: v.target, ...readOnly, ...(size !== undefined ? { tmpfsSize: size } : {}) };
      }
      if (v.type === "bind") {
        if (v.source === undefined) {
          fail([...path, "source"], "a bind mount needs a source (a host path)");
          return undefined;
        }
        return { type: "bind", source: resolveHostPath(v.source), target: v.target, ...readOnly };
      }
      if (v.source === undefined) return { type: "volume", target: v.target, ...readOnly };
      const name = refName("volume", "volumes", v.source, [...path, "source"]);
      return name ? { type: "volume", source: name, target: v.target, ...readOnly } : undefined;
    }

    let healthcheck: ServiceSpecInput["healthcheck"] | undefined;
    const hc = s.healthcheck;
    if (hc && !hc.disable) {
      const test = typeof hc.test === "string" ? ["CMD-SHELL", hc.test] : hc.test;
      let cmd: string | undefined;
      if (test === undefined) warnings.push(`services.${key}.healthcheck has no test: ignored (Baton does not read an image's HEALTHCHECK)`);
      else if (test[0] === "CMD" && test.length > 1) cmd = joinWords(test.slice(1));
      else if (test[0] === "CMD-SHELL" && test.length > 1) cmd = test.slice(1).join(" ");
      else if (test[0] !== "NONE") fail(at("healthcheck", "test"), `must be a command string, or a list starting with CMD, CMD-SHELL or NONE (then the command)`);
      if (cmd !== undefined) {
        healthcheck = {
          cmd,
          ...(hc.interval !== undefined ? { interval: hc.interval } : {}),
          ...(hc.timeout !== undefined ? { timeout: hc.timeout } : {}),
          // docker: 0 retries means the default.
          ...(hc.retries ? { retries: hc.retries } : {}),
          ...(hc.start_period !== undefined ? { startPeriod: hc.start_period } : {}),
        };
      }
    }

    const dependsOn = s.depends_on === undefined ? [] : Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on).filter((k) => !k.startsWith("x-"));
    dependsOn.forEach((dep, i) => {
      if (!serviceKeys.includes(dep)) fail(Array.isArray(s.depends_on) ? at("depends_on", i) : at("depends_on", dep), `service "${dep}" is not defined in this stack`);
      else if (dep === key) fail(Array.isArray(s.depends_on) ? at("depends_on", i) : at("depends_on", dep), "a service cannot depend on itself");
    });
    const secrets = objectRefs("secret", s.secrets);
    const configs = objectRefs("config", s.configs);
    if (problems.length > before) return undefined;

    const input: StackServiceInput = {
      name: `${ns}_${key}`,
      labels: { ...labelsOf(s.labels), ...labelsOf(d.labels), ...nsLabel },
      ...(d.mode !== undefined ? { mode: d.mode } : {}),
      ...(d.replicas !== undefined ? { replicas: d.replicas } : {}),
      driver: driver!,
      ...(driver === "docker" ? { image: s.image! } : {}),
      ...(entrypoint ? { entrypoint } : {}),
      ...(s.user !== undefined ? { user: s.user } : {}),
      command,
      ...(env.size ? { env: [...env].map(([k, v]) => `${k}=${v}`) } : {}),
      // A process runs in the stack file's directory unless working_dir says otherwise; a container in its image's WORKDIR.
      ...(driver === "process" ? { workdir: resolveHostPath(s.working_dir ?? ".") } : s.working_dir !== undefined ? { workdir: s.working_dir } : {}),
      ...(rp ? { restartPolicy: { ...(rp.condition ? { condition: rp.condition } : {}), ...(rp.delay !== undefined ? { delay: rp.delay } : {}), ...(rp.max_attempts !== undefined ? { maxAttempts: rp.max_attempts } : {}), ...(rp.window !== undefined ? { window: rp.window } : {}) } } : {}),
      ...(healthcheck ? { healthcheck } : {}),
      ...(publish.length ? { publish } : {}),
      ...(d.update_config ? { update: updateConfig(d.update_config) } : {}),
      ...(d.rollback_config ? { rollback: updateConfig(d.rollback_config) } : {}),
      ...(s.stop_signal !== undefined ? { stopSignal: s.stop_signal } : {}),
      ...(s.stop_grace_period !== undefined ? { stopGracePeriod: s.stop_grace_period } : {}),
      ...(constraints.length ? { constraints } : {}),
      ...(prefs.length ? { placementPrefs: prefs } : {}),
      ...(d.placement?.max_replicas_per_node !== undefined ? { maxReplicasPerNode: d.placement.max_replicas_per_node } : {}),
      ...(reserveCpus !== undefined ? { reserveCpus } : {}),
      ...(reserveMemory !== undefined ? { reserveMemory } : {}),
      ...(limitCpus !== undefined ? { limitCpus } : {}),
      ...(limitMemory !== undefined ? { limitMemory } : {}),
      ...(networks.length ? { networks } : {}),
      ...(mounts.length ? { mounts } : {}),
      ...(secrets.length ? { secrets } : {}),
      ...(configs.length ? { configs } : {}),
      ...(d.endpoint_mode !== undefined ? { endpointMode: d.endpoint_mode } : {}),
    };
    return { key, input, dependsOn };
  }

  const ordered = orderByDependencies(services, (path, problem) => fail(path, problem));
  return { spec: { namespace: ns, services: ordered, objects, warnings, locate: ctx.locate }, problems };
}

/** Ports: "8080:80", "80", "8080:80/udp", 80, or the long form → the API's publish objects. */
function portOf(p: string | number | { target: number; published?: number | string; protocol?: string; mode?: string }, fail: (problem: string) => void): Obj | undefined {
  if (typeof p === "number") return { target: p };
  if (typeof p === "object") {
    return { target: p.target, ...(p.published !== undefined ? { published: Number(p.published) } : {}), ...(p.protocol ? { protocol: p.protocol } : {}), ...(p.mode ? { mode: p.mode } : {}) };
  }
  const m = /^(?:(.+):)?(\d+)(?:\/(tcp|udp|http))?$/.exec(p.trim());
  const hostPart = m?.[1];
  if (/^\d+-\d+(:|$)|:\d+-\d+/.test(p)) return void fail(`"${p}": port ranges are not supported: list each port`);
  if (!m) return void fail(`"${p}" is not PUBLISHED:TARGET[/tcp|udp], TARGET, or {target, published, protocol, mode}`);
  if (hostPart !== undefined && !/^\d+$/.test(hostPart)) return void fail(`"${p}": publishing on one host address is not supported (Baton publishes on every address of every node)`);
  const target = Number(m[2]);
  const published = hostPart === undefined ? undefined : Number(hostPart);
  if (target < 1 || target > 65535 || (published !== undefined && (published < 1 || published > 65535))) return void fail(`"${p}": a port is 1-65535`);
  return { target, ...(published !== undefined ? { published } : {}), ...(m[3] ? { protocol: m[3] } : {}) };
}

/** Services after the ones they depend on (file order otherwise); a cycle is a problem. */
function orderByDependencies(services: StackService[], fail: (path: Path, problem: string) => void): StackService[] {
  const byKey = new Map(services.map((s) => [s.key, s]));
  const out: StackService[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (s: StackService, chain: string[]): void => {
    if (state.get(s.key) === "done") return;
    if (state.get(s.key) === "visiting") {
      const cycle = [...chain.slice(chain.indexOf(s.key)), s.key];
      fail(["services", cycle[0]!, "depends_on"], `dependency cycle: ${cycle.join(" → ")}`);
      return;
    }
    state.set(s.key, "visiting");
    for (const d of s.dependsOn) {
      const dep = byKey.get(d);
      if (dep) visit(dep, [...chain, s.key]);
    }
    state.set(s.key, "done");
    out.push(s);
  };
  for (const s of services) visit(s, []);
  return out;
}
