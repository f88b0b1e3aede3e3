import { addFileFlags, applyFileFlags } from "./file-flags.js";
import type { Command } from "commander";
import { Option } from "commander";
import { BatonError } from "../../lib/errors.js";
import type { Service } from "../../model/objects.js";
import type { ServiceSpecInput } from "../../input/schemas.js";
import { withClient } from "../context.js";
import { collect, parseInteger, parseLabels, parseNumber, resolveEnv } from "../parse.js";
import { waitConverged } from "../output/progress.js";
import type { UpdatePreview } from "../../updater/dry-run.js";
import { addTaskFlags } from "./task-flags.js";
import { addProbeFlags, probesFrom } from "./probe-flags.js";
import { collectMount } from "../parse-mount.js";

/** --update-* and --rollback-* (docker's names), on create and update. */
export function addUpdateConfigFlags(cmd: Command): Command {
  for (const kind of ["update", "rollback"] as const) {
    cmd
      .option(`--${kind}-parallelism <n>`, `slots ${kind}d at once, 0 = all (default 1)`, parseInteger)
      .option(`--${kind}-delay <duration>`, `wait after each slot (default 0s)`)
      .addOption(new Option(`--${kind}-failure-action <action>`, `on too many failures (default ${kind === "update" ? "pause" : "pause"})`).choices(kind === "update" ? ["pause", "continue", "rollback"] : ["pause", "continue"]))
      .option(`--${kind}-monitor <duration>`, "how long a new task must stay up to count as updated (default 5s)")
      .option(`--${kind}-max-failure-ratio <ratio>`, "failed new tasks per slot tolerated, 0..1 (default 0)", parseNumber)
      .addOption(new Option(`--${kind}-order <order>`, "start-first (default) or stop-first").choices(["start-first", "stop-first"]))
      .option(`--${kind}-ready-timeout <duration>`, "a new task not ready this long after it started counts as failed (default 60s)")
      .addOption(new Option(`--${kind}-strategy <strategy>`, "rolling (default), blue-green or canary").choices(["rolling", "blue-green", "canary"]))
      .option(`--${kind}-max-surge <n|n%>`, "Kubernetes' maxSurge, mapped onto order and parallelism (docs/updates.md)")
      .option(`--${kind}-max-unavailable <n|n%>`, "Kubernetes' maxUnavailable, mapped onto order and parallelism")
      .option(`--${kind}-canary-steps <percents>`, "canary: shares of requests for the new version, e.g. 10,50,100", parseSteps)
      .option(`--${kind}-canary-interval <duration>`, "canary: how long each step is watched (default 30s)")
      .option(`--${kind}-canary-max-error-rate <rate>`, "canary: abort above this error rate of the new version, e.g. 1% (default 1%)");
  }
  return cmd;
}

type Opts = Record<string, unknown>;

/** "10,50,100" → [10, 50, 100]; the API checks the values. */
function parseSteps(v: string): number[] {
  return v.split(",").map((x) => parseInteger(x.trim().replace(/%$/, "")));
}

/** The update/rollback config fields given as flags, under the API's names. */
export function updateConfigFrom(opts: Opts, kind: "update" | "rollback"): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  for (const [suffix, field] of [["Parallelism", "parallelism"], ["Delay", "delay"], ["FailureAction", "failureAction"], ["Monitor", "monitor"], ["MaxFailureRatio", "maxFailureRatio"], ["Order", "order"], ["ReadyTimeout", "readyTimeout"], ["Strategy", "strategy"], ["CanarySteps", "canarySteps"], ["CanaryInterval", "canaryInterval"], ["CanaryMaxErrorRate", "canaryMaxErrorRate"], ["MaxSurge", "maxSurge"], ["MaxUnavailable", "maxUnavailable"]] as const) {
    const v = opts[`${kind}${suffix}`];
    if (v !== undefined) out[field] = v;
  }
  return Object.keys(out).length ? out : undefined;
}

/** "8080:80/http" or "published=8080,target=80" → [published, target] to match --publish-rm against. */
function portsOf(p: NonNullable<ServiceSpecInput["publish"]>[number]): number[] {
  if (typeof p !== "string") return [p.published, p.target].filter((n): n is number => n !== undefined);
  if (p.includes("=")) return [...p.matchAll(/(?:published|target)=(\d+)/g)].map((m) => Number(m[1]));
  return [...p.matchAll(/\d+/g)].map((m) => Number(m[0]));
}

/** A repeatable flag's values (absent: none). */
const strings = (v: unknown): string[] => (v as string[] | undefined) ?? [];

/** --x-add / --x-rm on a list: drop what `removes` matches, append the additions. */
function editList<T>(list: T[] | undefined, removes: (item: T) => boolean, additions: T[]): T[] {
  return [...(list ?? []).filter((item) => !removes(item)), ...additions];
}

/** docker's --args: a string split into words, with '…' and "…" quoting. */
function splitArgs(text: string): string[] {
  return [...text.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
}

/** Applies the flags to the spec as it was sent (its input form); the API validates the result. */
export function applyChanges(input: ServiceSpecInput, o: Opts): ServiceSpecInput {
  const next: ServiceSpecInput = structuredClone(input);
  if (o.args !== undefined) next.command = [next.command[0]!, ...splitArgs(o.args as string)];
  if (o.replicas !== undefined) next.replicas = o.replicas as number;
  const envRm = new Set((o.envRm as string[] | undefined) ?? []);
  const envAdd = resolveEnv((o.envAdd as string[] | undefined) ?? []);
  const addKeys = new Set(envAdd.map((e) => e.slice(0, e.indexOf("="))));
  if (envRm.size || envAdd.length) next.env = [...(next.env ?? []).filter((e) => { const k = e.split("=")[0]!; return !envRm.has(k) && !addKeys.has(k); }), ...envAdd];
  if (o.labelAdd || o.labelRm) {
    const labels = { ...(next.labels ?? {}), ...parseLabels(o.labelAdd as string[] | undefined) };
    for (const k of (o.labelRm as string[] | undefined) ?? []) delete labels[k];
    next.labels = labels;
  }
  if (o.publishRm || o.publishAdd) {
    const rm = new Set(strings(o.publishRm).map(Number));
    next.publish = editList(next.publish, (p) => portsOf(p).some((n) => rm.has(n)), strings(o.publishAdd));
  }
  if (o.constraintAdd || o.constraintRm) next.constraints = editList(next.constraints, (c) => strings(o.constraintRm).includes(c), strings(o.constraintAdd));
  if (o.placementPrefAdd || o.placementPrefRm) next.placementPrefs = editList(next.placementPrefs, (p) => strings(o.placementPrefRm).includes(p), strings(o.placementPrefAdd));
  if (o.networkAdd || o.networkRm) {
    const kept = (next.networks ?? []).filter((n) => !strings(o.networkRm).includes(n));
    next.networks = [...kept, ...strings(o.networkAdd).filter((n) => !kept.includes(n))];
  }
  // docker's --mount-rm names the target.
  if (o.mountAdd || o.mountRm) next.mounts = editList(next.mounts, (m) => strings(o.mountRm).map((t) => t.replace(/(.)\/+$/, "$1")).includes(m.target.replace(/(.)\/+$/, "$1")), (o.mountAdd as ServiceSpecInput["mounts"]) ?? []);
  if (o.endpointMode !== undefined) next.endpointMode = o.endpointMode as "vip" | "dnsrr";
  if (o.replicasMaxPerNode !== undefined) next.maxReplicasPerNode = o.replicasMaxPerNode as number;
  applyFileFlags(next, o);
  const health = { cmd: o.healthCmd, http: o.healthHttp, tcp: o.healthTcp, interval: o.healthInterval, timeout: o.healthTimeout, retries: o.healthRetries, startPeriod: o.healthStartPeriod };
  if (o.healthcheck === false) {
    delete next.healthcheck;
    // As docker's: no check at all, the image's HEALTHCHECK included (only containers have one).
    if ((next.driver ?? (next.image !== undefined ? "docker" : "process")) === "docker") next.noHealthcheck = true;
  } else if (Object.values(health).some((v) => v !== undefined)) {
    delete next.noHealthcheck;
    const kind = health.cmd !== undefined || health.http !== undefined || health.tcp !== undefined;
    next.healthcheck = { ...(kind ? {} : next.healthcheck ?? {}), ...Object.fromEntries(Object.entries(health).filter(([, v]) => v !== undefined)) } as ServiceSpecInput["healthcheck"];
  }
  for (const [flag, field] of [["stopSignal", "stopSignal"], ["stopGracePeriod", "stopGracePeriod"], ["workdir", "workdir"], ["reserveCpu", "reserveCpus"], ["reserveMemory", "reserveMemory"], ["limitCpu", "limitCpus"], ["limitMemory", "limitMemory"], ["loadBalance", "loadBalance"], ["waitForBackend", "waitForBackend"]] as const) {
    if (o[flag] !== undefined) (next as Record<string, unknown>)[field] = o[flag];
  }
  const rp = { condition: o.restartCondition, delay: o.restartDelay, maxAttempts: o.restartMaxAttempts, window: o.restartWindow };
  if (Object.values(rp).some((v) => v !== undefined)) next.restartPolicy = { ...(next.restartPolicy ?? {}), ...Object.fromEntries(Object.entries(rp).filter(([, v]) => v !== undefined)) };
  const { probes } = probesFrom(o);
  for (const [kind, p] of Object.entries(probes ?? {})) {
    // A new check (http, tcp or cmd) replaces the probe; timings alone change the existing one.
    const replaces = p.http !== undefined || p.tcp !== undefined || p.cmd !== undefined;
    const prev = (next.probes as Record<string, Record<string, unknown>> | undefined)?.[kind];
    next.probes = { ...(next.probes ?? {}), [kind]: { ...(replaces ? {} : prev ?? {}), ...p } };
  }
  for (const kind of ["update", "rollback"] as const) {
    const u = updateConfigFrom(o, kind);
    if (u) next[kind] = { ...(next[kind] ?? {}), ...u };
  }
  return next;
}

/** A plan in the manner of `nomad job plan`. */
function formatPreview(name: string, p: UpdatePreview): string {
  const show = (v: unknown): string => (v === undefined ? "(none)" : JSON.stringify(v));
  const lines = [`Service ${name}: ${p.specVersion.to !== p.specVersion.from ? `spec version ${p.specVersion.from} → ${p.specVersion.to}` : "no new spec version"}`];
  for (const c of p.changes) lines.push(`  ${c.from === undefined ? "+" : c.to === undefined ? "-" : "~"} ${c.path}: ${show(c.from)} → ${show(c.to)}`);
  if (p.changes.length === 0) lines.push("  (no field changes)");
  if (p.replicas) lines.push(`Scale: ${p.replicas.from} → ${p.replicas.to} replicas`);
  const r = p.rollout;
  if (r) {
    lines.push(`Rollout: ${r.strategy}, ${r.order}, parallelism ${r.parallelism || "all"}, delay ${r.delayMs} ms, monitor ${r.monitorMs} ms`);
    r.batches.forEach((b, i) => lines.push(`  batch ${i + 1}: slot${b.length === 1 ? "" : "s"} ${b.join(", ")}`));
    lines.push(`  kept as they are: ${r.kept.length ? r.kept.join(", ") : "none"}`);
  } else lines.push("Rollout: none (no task is replaced)");
  lines.push("Dry run: nothing was changed.");
  return lines.join("\n") + "\n";
}

export function registerServiceUpdate(service: Command): void {
  const update = service
    .command("update")
    .description("Change a service; its tasks are replaced by a rolling update (docker service update)")
    .argument("<service>")
    .option("--args <args>", "the command's arguments (replaces them)")
    .option("--replicas <n>", "number of tasks (does not replace any task)", parseInteger)
    .option("--env-add <KEY=VALUE>", "add or change an environment variable (repeatable)", collect)
    .option("--env-rm <KEY>", "remove an environment variable (repeatable)", collect)
    .option("--label-add <key=value>", "add or change a label (repeatable)", collect)
    .option("--label-rm <key>", "remove a label (repeatable)", collect)
    .option("--publish-add <port>", "publish a port, as -p on create (repeatable)", collect)
    .option("--publish-rm <port>", "stop publishing a port, by published or target port (repeatable)", collect)
    .option("--constraint-add <expr>", "add a placement constraint (repeatable)", collect)
    .option("--constraint-rm <expr>", "remove a placement constraint (repeatable)", collect)
    .option("--placement-pref-add <pref>", "add a placement preference, spread=node.labels.<name> (repeatable)", collect)
    .option("--placement-pref-rm <pref>", "remove a placement preference (repeatable)", collect)
    .option("--network-add <network>", "attach to a network (repeatable)", collect)
    .option("--network-rm <network>", "detach from a network, as it was named (repeatable)", collect)
    .option("--mount-add <mount>", "add a mount, as --mount on create (repeatable)", collectMount)
    .option("--mount-rm <target>", "remove the mount at this target path (repeatable)", collect)
    .addOption(new Option("--endpoint-mode <mode>", "vip or dnsrr").choices(["vip", "dnsrr"]))
    .option("--no-healthcheck", "remove the health check (a container's image HEALTHCHECK too)")
    .option("--force", "replace every task even if nothing changed")
    .option("--dry-run", "print the field diff and the plan (which slots, in what order, what is kept); change nothing")
    .option("-d, --detach", "return at once instead of following the update")
    .option("-q, --quiet", "print nothing but errors");
  addTaskFlags(update, "update");
  addProbeFlags(update);
  addFileFlags(update, "update");
  addUpdateConfigFlags(update);
  update.action(async (ref: string, opts: Opts, cmd: Command) =>
    withClient(cmd, async (c) => {
      const svc = await c.call<Service>("GET", `/v1/services/${encodeURIComponent(ref)}`);
      if (svc.specInput === undefined) throw new BatonError("VALIDATION_FAILED", `service "${svc.spec.name}" was created by an older baton and cannot be updated; remove and create it again`);
      const spec = applyChanges(svc.specInput as ServiceSpecInput, opts);
      if (opts.dryRun) {
        const p = await c.call<UpdatePreview>("POST", `/v1/services/${svc.id}/update`, { version: svc.version, spec, dryRun: true, ...(opts.force ? { force: true } : {}) });
        process.stdout.write(formatPreview(svc.spec.name, p));
        return;
      }
      const updated = await c.call<Service>("POST", `/v1/services/${svc.id}/update`, { version: svc.version, spec, ...(opts.force ? { force: true } : {}) });
      if (!opts.quiet) process.stdout.write(`${updated.spec.name}\n`);
      if (!opts.detach && !opts.quiet) await waitConverged(c, updated.id, updated.specVersion !== svc.specVersion ? "update" : "converged");
    }),
  );

  service
    .command("rollback")
    .description("Return a service to its previous spec (docker service rollback)")
    .argument("<service>")
    .option("-d, --detach", "return at once instead of following the rollback")
    .option("-q, --quiet", "print nothing but errors")
    .action(async (ref: string, opts: { detach?: boolean; quiet?: boolean }, cmd: Command) =>
      withClient(cmd, async (c) => {
        const s = await c.call<Service>("POST", `/v1/services/${encodeURIComponent(ref)}/rollback`);
        if (!opts.quiet) process.stdout.write(`${s.spec.name}\n`);
        if (!opts.detach && !opts.quiet) await waitConverged(c, s.id, "rollback");
      }),
    );
}
