import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BatonError, validationError, type FieldProblem } from "../lib/errors.js";
import type { Service } from "../model/objects.js";
import { resolveServiceSpec } from "../input/resolve.js";
import type { ServiceSpecInput } from "../input/schemas.js";
import { previewUpdate } from "../updater/dry-run.js";
import { withNewSpec } from "../updater/transitions.js";
import { readStack } from "./compose/stack-file.js";
import type { StackObjectKind } from "./compose/translate.js";
import { applyStackPlan, DeployStopped, planStackDeploy, removeStack, type ApiObject, type StackApi } from "./stack-deploy.js";

/**
 * An in-memory API: services resolved and updated with the API's own functions, objects by
 * name; every write is recorded, so a test can say nothing was written.
 */
class FakeApi implements StackApi {
  services = new Map<string, Service>();
  objects = new Map<StackObjectKind, Map<string, ApiObject>>([["network", new Map()], ["volume", new Map()], ["secret", new Map()], ["config", new Map()]]);
  writes: string[] = [];
  failOn?: string;
  /** What the API's validation says about the next update dry run. */
  previewRefusal?: BatonError;
  private seq = 0;

  private write(what: string): void {
    if (this.failOn === what) throw new BatonError("UNAVAILABLE", `${what}: connection lost`);
    this.writes.push(what);
  }
  async listServices(): Promise<Service[]> {
    return [...this.services.values()];
  }
  async listObjects(kind: StackObjectKind): Promise<ApiObject[]> {
    return [...this.objects.get(kind)!.values()];
  }
  async getObject(kind: StackObjectKind, name: string): Promise<ApiObject | undefined> {
    return this.objects.get(kind)!.get(name);
  }
  async createObject(kind: StackObjectKind, body: Record<string, unknown>): Promise<void> {
    this.write(`create ${kind} ${String(body.name)}`);
    if (kind === "secret") this.secretData.set(String(body.name), String(body.data));
    this.objects.get(kind)!.set(String(body.name), { id: String(++this.seq), name: String(body.name), labels: body.labels as Record<string, string>, ...(kind === "config" ? { data: String(body.data) } : {}) });
  }
  /** A secret's data, which the API never lists: only compared. */
  private secretData = new Map<string, string>();
  async sameSecretData(name: string, data: string): Promise<boolean> {
    const stored = this.secretData.get(name);
    if (stored === undefined) throw new BatonError("NOT_FOUND", `secret "${name}" not found`);
    return stored === data;
  }
  async removeObject(kind: StackObjectKind, name: string): Promise<void> {
    this.write(`remove ${kind} ${name}`);
    this.objects.get(kind)!.delete(name);
  }
  /**
   * Resolved as the API does, secret and config references against the objects by name (a
   * missing one is refused). The contract's fields this build's API does not have yet (networks,
   * mounts, endpointMode: the netvol branch) are kept in specInput only.
   */
  private resolve(input: ServiceSpecInput) {
    const pending = new Set(["networks", "mounts", "endpointMode"]);
    const known = Object.fromEntries(Object.entries(input).filter(([k]) => !pending.has(k))) as ServiceSpecInput;
    return resolveServiceSpec(known, (kind, name) => this.objects.get(kind === "secrets" ? "secret" : "config")!.get(name)?.id);
  }
  async createService(input: ServiceSpecInput): Promise<Service> {
    this.write(`create service ${input.name}`);
    const s: Service = { id: `svc${++this.seq}`, version: this.seq, createdAt: 0, updatedAt: 0, spec: this.resolve(input), specInput: input, specVersion: 1 };
    this.services.set(s.spec.name, s);
    return s;
  }
  /** As the API's create dry run: the body resolved (references included), the name and published ports checked against the services. */
  async previewCreate(input: ServiceSpecInput) {
    const problems: FieldProblem[] = [];
    try {
      this.resolve(input);
    } catch (err) {
      problems.push(...(err as BatonError).fields);
    }
    (input.networks ?? []).forEach((n, i) => {
      if (!this.objects.get("network")!.has(n)) problems.push({ path: ["networks", i], problem: `network "${n}" not found (baton network create ${n})` });
    });
    const taken = new Map([...this.services.values()].flatMap((s) => s.spec.endpoint.ports.map((p) => [p.published, s.spec.name] as const)));
    (input.publish ?? []).forEach((p, i) => {
      const other = typeof p === "object" ? taken.get(p.published) : undefined;
      if (other) problems.push({ path: ["publish", i, "published"], problem: `${(p as { published: number }).published} is already published by service "${other}"` });
    });
    if (problems.length) throw validationError(problems);
    return { dryRun: true };
  }
  async previewUpdate(svc: Service, input: ServiceSpecInput) {
    if (this.previewRefusal) throw this.previewRefusal;
    return previewUpdate(svc, this.resolve(input), [], 0);
  }
  async updateService(svc: Service, input: ServiceSpecInput): Promise<Service> {
    this.write(`update service ${svc.spec.name}`);
    const current = this.services.get(svc.spec.name)!;
    if (current.version !== svc.version) throw new BatonError("VERSION_CONFLICT", "changed since it was read");
    const next = { ...withNewSpec(current, this.resolve(input), input, 0, false), version: ++this.seq };
    this.services.set(next.spec.name, next);
    return next;
  }
  async removeService(svc: Service): Promise<void> {
    this.write(`remove service ${svc.spec.name}`);
    this.services.delete(svc.spec.name);
  }
}

const dir = mkdtempSync(join(tmpdir(), "baton-stackdeploy-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
function stack(text: string, ns = "app") {
  const p = join(dir, `${ns}-${Math.random().toString(36).slice(2)}.yml`);
  writeFileSync(p, text);
  return readStack([p], ns, {});
}

const FILE = (replicas: number, extra = "") => `services:
  web:
    x-baton: {driver: process}
    command: node web.js
    deploy: {replicas: ${replicas}}
    networks: [front]
    secrets: [token]
  db:
    x-baton: {driver: process}
    command: node db.js
${extra}networks:
  front: {driver: overlay}
secrets:
  token: {external: true}
configs:
  conf: {content: "v1"}
`;

async function deploy(api: FakeApi, text: string, prune = false) {
  const spec = stack(text);
  const { steps, problems } = await planStackDeploy(api, spec, { prune });
  if (problems.length) throw validationError(problems);
  await applyStackPlan(api, steps);
  return steps;
}

test("a missing external secret stops the deploy before any write, naming its path and line", async () => {
  const api = new FakeApi();
  const { steps, problems } = await planStackDeploy(api, stack(FILE(2)), { prune: false });
  // Where it is declared, and where a new service uses it (the API's create dry run says so).
  assert.deepEqual(problems.map((p) => [p.path.join("."), p.problem]), [
    ["secrets.token.external", 'external secret "token" does not exist: create it first (baton secret create token …) (line 14)'],
    ["services.web.secrets.0.source", 'secret "token" not found (line 7)'],
  ]);
  assert.ok(steps.length > 0);
  assert.deepEqual(api.writes, []);
});

test("first deploy creates objects then services; a second deploy with one replica count changed updates only that service", async () => {
  const api = new FakeApi();
  api.objects.get("secret")!.set("token", { id: "s1", name: "token", labels: {} });
  await deploy(api, FILE(2));
  assert.deepEqual(api.writes, ["create network app_front", "create config app_conf", "create service app_web", "create service app_db"]);
  assert.deepEqual(api.services.get("app_web")!.specInput, { ...(api.services.get("app_web")!.specInput as object), networks: ["app_front"], secrets: [{ source: "token", target: "token" }] });
  api.writes = [];
  const same = await deploy(api, FILE(2));
  assert.deepEqual(api.writes, [], "nothing changed: nothing written");
  assert.deepEqual(same.filter((s) => s.kind === "service").map((s) => s.action), ["unchanged", "unchanged"]);
  const steps = await deploy(api, FILE(4));
  assert.deepEqual(api.writes, ["update service app_web"]);
  const update = steps.find((s) => s.action === "update")!;
  assert.ok(update.kind === "service" && update.action === "update" && update.preview?.replicas?.to === 4);
  assert.deepEqual(api.services.get("app_web")!.spec.mode, { kind: "replicated", replicas: 4 });
});

test("--prune removes only the stack's services that left the file; a service outside the stack with the same name is a problem", async () => {
  const api = new FakeApi();
  api.objects.get("secret")!.set("token", { id: "s1", name: "token", labels: {} });
  await deploy(api, FILE(1, "  extra:\n    x-baton: {driver: process}\n    command: node extra.js\n"));
  await api.createService({ name: "other", command: ["x"] });
  api.writes = [];
  await deploy(api, FILE(1));
  assert.deepEqual(api.writes, [], "without --prune nothing is removed");
  await deploy(api, FILE(1), true);
  assert.deepEqual(api.writes, ["remove service app_extra"]);
  await api.createService({ name: "app_new", command: ["x"] });
  const { problems } = await planStackDeploy(api, stack(FILE(1, "  new:\n    x-baton: {driver: process}\n    command: node new.js\n")), { prune: false });
  assert.match(problems[0]!.problem, /a service named "app_new" exists and does not belong to stack app/);
});

test("a config whose content changed is refused before any write", async () => {
  const api = new FakeApi();
  api.objects.get("secret")!.set("token", { id: "s1", name: "token", labels: {} });
  await deploy(api, FILE(1));
  api.writes = [];
  const { problems } = await planStackDeploy(api, stack(FILE(3).replace('"v1"', '"v2"')), { prune: false });
  assert.match(problems[0]!.problem, /config "app_conf" exists with other content/);
  assert.deepEqual(api.writes, []);
});

test("a stack's own secret whose file changed is refused at its path and line before any write (secrets are immutable); the same file is kept", async () => {
  const api = new FakeApi();
  api.objects.get("secret")!.set("token", { id: "s1", name: "token", labels: {} });
  const pw = join(dir, "pw.txt");
  writeFileSync(pw, "first");
  const text = FILE(1).replace("secrets:\n", `secrets:\n  db_password: {file: ${pw}}\n`).replace("    command: node db.js\n", "    command: node db.js\n    secrets: [db_password]\n");
  await deploy(api, text);
  assert.ok(api.writes.includes("create secret app_db_password"));
  api.writes = [];
  const again = await planStackDeploy(api, stack(text), { prune: false });
  assert.deepEqual(again.problems, []);
  assert.deepEqual(again.steps.find((st) => st.name === "app_db_password"), { kind: "secret", action: "exists", name: "app_db_password", note: "kept, same content" });
  writeFileSync(pw, "second");
  const { problems } = await planStackDeploy(api, stack(text.replace("deploy: {replicas: 1}", "deploy: {replicas: 3}")), { prune: false });
  assert.deepEqual(problems.map((p) => [p.path.join("."), p.problem]), [
    ["secrets.db_password", 'secret "app_db_password" exists with other content; secrets are immutable: rename it (e.g. db_password_v2) to rotate (line 15)'],
  ]);
  assert.doesNotMatch(JSON.stringify(problems), /first|second/, "no content in the error");
  assert.deepEqual(api.writes, []);
});

test("a deploy that fails part-way says what was applied and what was not", async () => {
  const api = new FakeApi();
  api.objects.get("secret")!.set("token", { id: "s1", name: "token", labels: {} });
  api.failOn = "create service app_db";
  const spec = stack(FILE(1));
  const { steps } = await planStackDeploy(api, spec, { prune: false });
  const err = await applyStackPlan(api, steps).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof DeployStopped);
  assert.deepEqual(err.applied.map((s) => `${s.action} ${s.kind} ${s.name}`), ["create network app_front", "create config app_conf", "create service app_web"]);
  assert.equal(`${err.failed.action} ${err.failed.kind} ${err.failed.name}`, "create service app_db");
  assert.deepEqual(err.notApplied, []);
  assert.match(err.message, /create service app_db failed: create service app_db: connection lost/);
});

test("stack rm removes the stack's services, then its networks, secrets and configs; external objects, volumes and other stacks stay", async () => {
  const api = new FakeApi();
  api.objects.get("secret")!.set("token", { id: "s1", name: "token", labels: {} });
  await deploy(api, FILE(1));
  await api.createObject("volume", { name: "app_data", labels: { "com.docker.stack.namespace": "app" } });
  await api.createObject("network", { name: "other_net", labels: { "com.docker.stack.namespace": "other" } });
  api.writes = [];
  const r = await removeStack(api, "app");
  assert.deepEqual(api.writes, ["remove service app_web", "remove service app_db", "remove network app_front", "remove config app_conf"]);
  assert.deepEqual(r.keptVolumes, ["app_data"]);
  assert.ok(api.objects.get("secret")!.has("token"), "the external secret stays");
  assert.ok(api.objects.get("network")!.has("other_net"));
});

test("the API's refusal of an update (a port taken on the host) is reported at the stack file's path and line", async () => {
  const api = new FakeApi();
  api.objects.get("secret")!.set("token", { id: "s1", name: "token", labels: {} });
  await deploy(api, FILE(1));
  api.writes = [];
  api.previewRefusal = validationError([{ path: ["spec", "publish", 0, "published"], problem: "8080 is in use on this host" }, { path: ["spec", "restartPolicy", "maxAttempts"], problem: "too many" }]);
  const { problems } = await planStackDeploy(api, stack(FILE(2)), { prune: false });
  assert.deepEqual(problems.map((p) => `${p.path.join(".")}: ${p.problem}`).slice(0, 2), ["services.web.ports.0.published: 8080 is in use on this host (line 2)", "services.web.deploy.restart_policy.max_attempts: too many (line 5)"]);
  assert.deepEqual(api.writes, []);
});

test("an update to a config this deploy creates is planned with the stack's own diff, then applied after the config", async () => {
  const api = new FakeApi();
  api.objects.get("secret")!.set("token", { id: "s1", name: "token", labels: {} });
  const withConf = (name: string) => FILE(2).replace("    command: node db.js\n", "    command: node db.js\n    configs: [conf]\n").replace('conf: {content: "v1"}', `conf: {content: "v1", name: ${name}}`);
  await deploy(api, withConf("conf_v1"));
  api.writes = [];
  const { steps, problems } = await planStackDeploy(api, stack(withConf("conf_v2")), { prune: false });
  assert.deepEqual(problems, []);
  const update = steps.find((s) => s.kind === "service" && s.action === "update");
  assert.ok(update?.kind === "service" && update.action === "update" && update.preview === undefined);
  assert.deepEqual(update.awaits, ["config conf_v2"]);
  assert.deepEqual(update.changes, [{ path: "configs", from: [{ source: "conf_v1", target: "conf" }], to: [{ source: "conf_v2", target: "conf" }] }]);
  await applyStackPlan(api, steps);
  assert.deepEqual(api.writes, ["create config conf_v2", "update service app_db"]);
  assert.equal(api.services.get("app_db")!.spec.task.configs?.[0]?.name, "conf_v2");
});

test("a service refers to a secret that neither exists nor is created: refused at its path, nothing written", async () => {
  const api = new FakeApi();
  api.objects.get("secret")!.set("token", { id: "s1", name: "token", labels: {} });
  await deploy(api, FILE(2));
  api.objects.get("secret")!.delete("token");
  api.writes = [];
  const { problems } = await planStackDeploy(api, stack(FILE(3)), { prune: false });
  assert.match(problems.map((p) => `${p.path.join(".")}: ${p.problem}`).join("\n"), /secrets\.token\.external: external secret "token" does not exist/);
  assert.match(problems.map((p) => `${p.path.join(".")}: ${p.problem}`).join("\n"), /services\.web\.secrets\.0\.source: secret "token" not found/);
  assert.deepEqual(api.writes, []);
});

test("an update refused for a port and referring to a config the deploy creates: only the port is reported", async () => {
  const api = new FakeApi();
  api.objects.get("secret")!.set("token", { id: "s1", name: "token", labels: {} });
  const withConf = (name: string) => FILE(2).replace("    command: node db.js\n", "    command: node db.js\n    configs: [conf]\n").replace('conf: {content: "v1"}', `conf: {content: "v1", name: ${name}}`);
  await deploy(api, withConf("conf_v1"));
  api.writes = [];
  api.previewRefusal = validationError([{ path: ["spec", "configs", 0, "source"], problem: 'config "conf_v2" not found' }, { path: ["spec", "publish", 0, "published"], problem: "8080 is in use on this host" }]);
  const { problems } = await planStackDeploy(api, stack(withConf("conf_v2")), { prune: false });
  assert.deepEqual(problems.map((p) => p.path.join(".")), ["services.db.ports.0.published"]);
  assert.deepEqual(api.writes, []);
});

test("a new service publishing a port a service outside the stack holds: refused at its path and line before any write; references to objects the deploy creates are not problems", async () => {
  const api = new FakeApi();
  api.objects.get("secret")!.set("token", { id: "s1", name: "token", labels: {} });
  await api.createService({ name: "outside", command: ["x"], publish: [{ published: 8080, target: 80 }] });
  api.writes = [];
  // web is on the network this deploy creates (front) and needs the external secret; db publishes 8080.
  const text = FILE(2).replace("    command: node db.js\n", "    command: node db.js\n    ports: [\"8080:80\"]\n");
  const { problems } = await planStackDeploy(api, stack(text), { prune: false });
  assert.deepEqual(problems.map((p) => `${p.path.join(".")}: ${p.problem}`), ['services.db.ports.0.published: 8080 is already published by service "outside" (line 11)']);
  assert.deepEqual(api.writes, []);
});

test("two services of the file publishing the same port: refused before any write", async () => {
  const api = new FakeApi();
  api.objects.get("secret")!.set("token", { id: "s1", name: "token", labels: {} });
  const text = FILE(2).replace("    secrets: [token]\n", "    secrets: [token]\n    ports: [\"8080:80\"]\n").replace("    command: node db.js\n", "    command: node db.js\n    ports: [{target: 81, published: 8080}]\n");
  const { problems } = await planStackDeploy(api, stack(text), { prune: false });
  assert.deepEqual(problems.map((p) => `${p.path.join(".")}: ${p.problem}`), ["services.db.ports.0.published: 8080/tcp is also published by service web of this file (line 12)"]);
  assert.deepEqual(api.writes, []);
});
