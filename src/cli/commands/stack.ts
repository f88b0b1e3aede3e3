import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { BatonError, formatPath } from "../../lib/errors.js";
import type { Service } from "../../model/objects.js";
import type { UpdatePreview } from "../../updater/dry-run.js";
import { readStack } from "../../manifests/compose/stack-file.js";
import type { StackObjectKind } from "../../manifests/compose/translate.js";
import { applyStackPlan, DeployStopped, describeStep, planStackDeploy, removeStack, stackOf, type ApiObject, type PlanStep, type StackApi } from "../../manifests/stack-deploy.js";
import type { ApiClient } from "../client.js";
import { withClient } from "../context.js";
import { collect } from "../parse.js";
import { printList } from "../output/table.js";
import { waitConverged } from "../output/progress.js";
import { printServices, printTasks, type ServiceWithStatus } from "./service-misc.js";

const isNotFound = (err: unknown): boolean => err instanceof BatonError && err.code === "NOT_FOUND";

/** Lists and objects of the API in the shape a stack needs, whichever way the API nests them. */
function asApiObject(o: Record<string, unknown>): ApiObject {
  const spec = (o.spec ?? {}) as Record<string, unknown>;
  return { id: String(o.id), name: String(o.name ?? spec.name), labels: (o.labels ?? spec.labels ?? {}) as Record<string, string>, ...(o.data !== undefined || spec.data !== undefined ? { data: String(o.data ?? spec.data) } : {}) };
}

/** The StackApi over the REST API. */
export function stackApiOver(c: ApiClient): StackApi {
  const path = (kind: StackObjectKind): string => `/v1/${kind}s`;
  return {
    listServices: () => c.call<Service[]>("GET", "/v1/services"),
    listObjects: async (kind) => {
      try {
        return (await c.call<Record<string, unknown>[]>("GET", path(kind))).map(asApiObject);
      } catch (err) {
        // An API without this kind of object has none of them.
        if (isNotFound(err)) return [];
        throw err;
      }
    },
    getObject: async (kind, name) => {
      try {
        return asApiObject(await c.call<Record<string, unknown>>("GET", `${path(kind)}/${encodeURIComponent(name)}`));
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    createObject: async (kind, body) => void (await c.call("POST", path(kind), body)),
    sameSecretData: async (name, data) => (await c.call<{ same: boolean }>("POST", `/v1/secrets/${encodeURIComponent(name)}/compare`, { data })).same,
    removeObject: async (kind, name) => {
      // A network is refused (409) while a stopping task still uses it: retry for a while.
      for (let attempt = 0; ; attempt++) {
        try {
          return void (await c.call("DELETE", `${path(kind)}/${encodeURIComponent(name)}`));
        } catch (err) {
          if (!(err instanceof BatonError) || err.status !== 409 || attempt >= 20) throw err;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    },
    createService: (input) => c.call<Service>("POST", "/v1/services", input),
    previewCreate: (input) => c.call("POST", "/v1/services?dryRun=true", input),
    previewUpdate: (svc, input) => c.call<UpdatePreview>("POST", `/v1/services/${svc.id}/update`, { version: svc.version, spec: input, dryRun: true }),
    updateService: (svc, input) => c.call<Service>("POST", `/v1/services/${svc.id}/update`, { version: svc.version, spec: input }),
    removeService: async (svc) => void (await c.call("DELETE", `/v1/services/${svc.id}`)),
  };
}

function parseBool(v: string): boolean {
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  throw new InvalidArgumentError(`"${v}" is not true or false (write --detach=false; -d takes the next word as its value)`);
}

const show = (v: unknown): string => (v === undefined ? "(none)" : JSON.stringify(v));

/** The plan, one line per object, the field diff under each update. */
function formatPlan(ns: string, steps: PlanStep[]): string {
  const lines = [`Stack ${ns}: dry run, nothing was changed`];
  const width = Math.max(0, ...steps.map((s) => s.name.length));
  for (const s of steps) {
    const what = s.action === "exists" ? `exists (${s.note})` : s.action === "remove" ? "remove (--prune)" : s.action;
    lines.push(`  ${s.kind.padEnd(8)} ${s.name.padEnd(width)}  ${what}`);
    if (s.kind === "service" && s.action === "update") {
      const p = s.preview;
      for (const c of p ? p.changes : s.changes) lines.push(`      ${c.from === undefined ? "+" : c.to === undefined ? "-" : "~"} ${c.path}: ${show(c.from)} → ${show(c.to)}`);
      if (!p) lines.push(`      rolling update once ${s.awaits.join(", ")} exist${s.awaits.length > 1 ? "" : "s"} (the API checks the update then)`);
      else lines.push(p.rollout ? `      rolling update of slots ${p.rollout.batches.flat().join(", ") || "none"} (spec version ${p.specVersion.from} → ${p.specVersion.to})` : "      no task is replaced");
    }
  }
  return lines.join("\n") + "\n";
}

const verb = { create: "Creating", update: "Updating", remove: "Removing" } as const;

export function registerStackCommands(stack: Command): void {
  stack
    .command("deploy")
    .description("Deploy a stack from compose files (docker stack deploy): create what is new, update what changed, nothing else")
    .argument("<stack>", "stack name: objects are named STACK_<name> and labelled com.docker.stack.namespace=STACK")
    .requiredOption("-c, --compose-file <file>", "stack file (repeatable: later files override earlier ones)", collect)
    .option("--prune", "remove the stack's services that are no longer in the files")
    .option("--dry-run", "print what would be created, updated (with the field diff) and removed; change nothing")
    .option("-d, --detach [bool]", "return once the changes are accepted; --detach=false follows every service until it converges and exits 1 if an update rolls back", parseBool, true)
    .action(async (ns: string, opts: { composeFile: string[]; prune?: boolean; dryRun?: boolean; detach: boolean }, cmd: Command) => {
      // Everything is read and checked before the first request: a bad file changes nothing.
      const spec = readStack(opts.composeFile, ns);
      for (const w of spec.warnings) process.stderr.write(`warning: ${w}\n`);
      await withClient(cmd, async (c) => {
        const api = stackApiOver(c);
        const { steps, problems } = await planStackDeploy(api, spec, { prune: opts.prune === true });
        if (problems.length) {
          const first = problems[0]!;
          throw new BatonError("VALIDATION_FAILED", `stack ${ns} not deployed, nothing was changed: ${formatPath(first.path)}: ${first.problem}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ""}`, problems);
        }
        if (opts.dryRun) return void process.stdout.write(formatPlan(ns, steps));
        let touched;
        try {
          touched = await applyStackPlan(api, steps, (s) => {
            if (s.action !== "exists" && s.action !== "unchanged") process.stdout.write(`${verb[s.action]} ${s.kind} ${s.name}\n`);
          });
        } catch (err) {
          if (!(err instanceof DeployStopped)) throw err;
          process.stderr.write(`Deploy of stack ${ns} stopped: ${err.message}\n`);
          process.stderr.write(`  applied: ${err.applied.map(describeStep).join(", ") || "nothing"}\n`);
          process.stderr.write(`  not applied: ${[err.failed, ...err.notApplied].map(describeStep).join(", ")}\n`);
          throw err.cause;
        }
        for (const s of steps) if (s.kind === "service" && s.action === "unchanged") process.stdout.write(`Service ${s.name} unchanged\n`);
        if (opts.detach) return;
        for (const { step, service } of touched) {
          if (step.kind !== "service" || step.action === "remove") continue;
          const newSpec = step.action === "update" && service.specVersion !== step.service.specVersion;
          await waitConverged(c, service.id, newSpec ? "update" : "converged");
        }
      });
    });

  stack
    .command("ls")
    .alias("list")
    .description("List stacks: the namespaces of services created by stack deploy")
    .option("--format <format>", "table or json (one object per line)")
    .action(async (opts: { format?: string }, cmd: Command) =>
      withClient(cmd, async (c) => {
        const counts = new Map<string, number>();
        for (const s of await c.call<Service[]>("GET", "/v1/services")) {
          const ns = stackOf(s.spec.labels);
          if (ns !== undefined) counts.set(ns, (counts.get(ns) ?? 0) + 1);
        }
        const rows = [...counts].sort(([a], [b]) => a.localeCompare(b));
        printList(rows, opts, ["NAME", "SERVICES"], ([n, k]) => [n, String(k)], ([n]) => n, ([n, k]) => ({ Name: n, Services: k }));
      }),
    );

  const stackServices = async (c: ApiClient, ns: string): Promise<ServiceWithStatus[]> => {
    const list = (await c.call<ServiceWithStatus[]>("GET", "/v1/services")).filter((s) => stackOf(s.spec.labels) === ns);
    if (!list.length) throw new BatonError("NOT_FOUND", `nothing found in stack: ${ns}`);
    return list;
  };

  stack
    .command("services")
    .description("List the services of a stack")
    .argument("<stack>")
    .option("-q, --quiet", "only ids")
    .option("--format <format>", "table or json (one object per line)")
    .action(async (ns: string, opts: { quiet?: boolean; format?: string }, cmd: Command) => withClient(cmd, async (c) => printServices(await stackServices(c, ns), opts)));

  stack
    .command("ps")
    .description("List the tasks of a stack's services")
    .argument("<stack>")
    .option("-q, --quiet", "only ids")
    .option("--format <format>", "table or json (one object per line)")
    .option("--no-trunc", "do not truncate ids and errors")
    .action(async (ns: string, opts: { quiet?: boolean; format?: string; trunc: boolean }, cmd: Command) =>
      withClient(cmd, async (c) => printTasks(c, (await stackServices(c, ns)).map((s) => s.id), opts)),
    );

  stack
    .command("rm")
    .alias("remove")
    .description("Remove stacks: their services, then the networks, secrets and configs they created (not external ones; volumes are kept)")
    .argument("<stack...>")
    .action(async (names: string[], _opts: unknown, cmd: Command) =>
      withClient(cmd, async (c) => {
        const api = stackApiOver(c);
        const failures: string[] = [];
        for (const ns of names) {
          const r = await removeStack(api, ns, (kind, name) => process.stdout.write(`Removing ${kind} ${name}\n`));
          if (r.removed === 0 && r.failures.length === 0) process.stderr.write(`Nothing found in stack: ${ns}\n`);
          for (const v of r.keptVolumes) process.stdout.write(`Keeping volume ${v} (its data; remove it with baton volume rm ${v})\n`);
          failures.push(...r.failures);
        }
        if (failures.length) throw new BatonError("UNAVAILABLE", `could not remove: ${failures.join("; ")}`);
      }),
    );
}
