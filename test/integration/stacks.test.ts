// Issue 13 (stacks): the seed's docker-stack.yml, its images swapped for process-driver services,
// deployed by the real CLI against a real `baton up`: converges, is listed, a one-replica change
// updates one service, --dry-run and a bad file change nothing, stack rm leaves no service or task.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { BatonProcess, HELLO, ROOT, getJson, httpGet, isAlive, waitFor } from "../harness/baton.js";

type Doc = Record<string, Record<string, Record<string, unknown>>>;

function postJson(socket: string, path: string, body: unknown): Promise<number> {
  return new Promise((res, rej) => {
    const data = JSON.stringify(body);
    const req = request({ socketPath: socket, path, method: "POST", headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data) } }, (r) => {
      r.resume();
      r.on("end", () => res(r.statusCode ?? 0));
    });
    req.on("error", rej);
    req.end(data);
  });
}

/** Which of issue 13's object kinds the API under test serves. */
interface Objects {
  /** /v1/secrets and /v1/configs (the secrets branch, merged). */
  secrets: boolean;
  /** /v1/networks and /v1/volumes: absent until the netvol branch merges. */
  netvol: boolean;
}

/** A POSIX sh command for a stack file: `$$` keeps a `$` from the stack's interpolation. */
const readsSecretThenServes = `set -e; h=$$(sha256sum < "$$BATON_SECRETS_DIR/db_password"); echo "db_password sha256 $\${h%% *}"; exec node ${HELLO}`;

/**
 * The seed's file with each image replaced by the hello server on the process driver, port 80 by
 * 18480 (no root), and constraints one node satisfies (the node is a manager labelled tier=app).
 * The services with the secret read its file (and log its digest) before they serve. Sections of
 * kinds the API does not serve yet are left out, with a note: today networks and volumes, until
 * the netvol branch merges (then `netvol` is true and the seed's file is used whole).
 * NOTE for the netvol merge: nothing here needs to change for the sections to be sent; check that
 * db's volume `pgdata:/var/lib/postgresql/data` means something for a process task (or adjust its
 * target here), and extend the `stack rm` test below (volumes are kept, networks removed).
 */
function seedForOneNode(objects: Objects, apiReplicas = 2): string {
  const doc = parse(readFileSync(join(ROOT, "test", "fixtures", "stacks", "docker-stack.yml"), "utf8")) as Doc;
  for (const s of Object.values(doc.services!)) {
    delete s.image;
    s["x-baton"] = { driver: "process" };
    s.command = objects.secrets && s.secrets ? ["sh", "-c", readsSecretThenServes] : `node ${HELLO}`;
    if (!objects.netvol) for (const k of ["networks", "volumes"]) delete s[k];
    if (!objects.secrets) delete s.secrets;
  }
  const deploy = (name: string) => doc.services![name]!.deploy as { replicas: number; placement: { constraints: string[] } };
  doc.services!.web!.ports = ["18480:80"];
  deploy("web").placement.constraints = ["node.role == manager"];
  deploy("api").replicas = apiReplicas;
  deploy("db").placement.constraints = ["node.labels.tier != edge"];
  if (!objects.netvol) for (const k of ["networks", "volumes"]) delete doc[k];
  if (!objects.secrets) delete doc.secrets;
  return stringify(doc);
}

const sha256 = (s: string): string => createHash("sha256").update(s).digest("hex");
const names = async (socket: string, kind: string): Promise<string[]> => ((await getJson(socket, `/v1/${kind}`)) as { name: string }[]).map((o) => o.name).sort();

describe("baton stack: the seed's stack file", () => {
  const baton = new BatonProcess();
  const dir = mkdtempSync(join(tmpdir(), "baton-stack-it-"));
  const file = join(dir, "docker-stack.yml");
  const objects: Objects = { secrets: false, netvol: false };
  const dbPassword = `pw-${process.pid}`;
  const versions = async (): Promise<Record<string, number>> =>
    Object.fromEntries(((await getJson(baton.socket, "/v1/services")) as { spec: { name: string }; version: number }[]).map((s) => [s.spec.name, s.version]));

  before(async () => {
    await baton.start();
    const { nodeId } = await baton.info();
    await baton.cliOk("node", "update", "--label-add", "tier=app", nodeId);
    const serves = async (kind: string): Promise<boolean> => Array.isArray(await getJson(baton.socket, `/v1/${kind}`));
    objects.secrets = (await serves("secrets")) && (await serves("configs"));
    objects.netvol = (await serves("networks")) && (await serves("volumes"));
    // The seed's secret is external: created first, as the issue says.
    if (objects.secrets) assert.equal(await postJson(baton.socket, "/v1/secrets", { name: "db_password", data: Buffer.from(dbPassword).toString("base64") }), 201);
    else process.stderr.write("note: this API has no secrets/configs endpoints: the seed's secrets are left out\n");
    if (!objects.netvol) process.stderr.write("note: this API has no networks/volumes endpoints (netvol not merged): the seed's networks and volumes are left out\n");
  });
  after(async () => {
    await baton.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  let pids: number[] = [];

  test("deploy --detach=false converges; stack ls, services and ps show it; web answers on its port", async () => {
    writeFileSync(file, seedForOneNode(objects));
    const out = await baton.cliOk("stack", "deploy", "-c", file, "--detach=false", "myapp");
    for (const s of ["web", "api", "db"]) assert.match(out, new RegExp(`Creating service myapp_${s}\\n`));
    for (const s of ["web", "api", "db"]) assert.match(out, new RegExp(`verify: Service myapp_${s} converged`));
    assert.match(await baton.cliOk("stack", "ls"), /^NAME\s+SERVICES\nmyapp\s+3\n$/);
    const services = (await baton.cliOk("stack", "services", "myapp", "--format", "json")).trim().split("\n").map((l) => JSON.parse(l) as { Name: string; Replicas: string });
    assert.deepEqual(services.map((s) => `${s.Name} ${s.Replicas}`).sort(), ["myapp_api 2/2", "myapp_db 1/1", "myapp_web 3/3"]);
    const ps = (await baton.cliOk("stack", "ps", "myapp", "--format", "json")).trim().split("\n").map((l) => JSON.parse(l) as { Name: string; CurrentState: string; Pid: number });
    assert.deepEqual(ps.filter((t) => t.CurrentState === "running").map((t) => t.Name).sort(), ["myapp_api.1", "myapp_api.2", "myapp_db.1", "myapp_web.1", "myapp_web.2", "myapp_web.3"]);
    pids = ps.map((t) => t.Pid);
    assert.match(await waitFor(() => httpGet(18480), 5000, "web answering on 18480"), /^hello from myapp_web\.\d/);
    const svc = (await getJson(baton.socket, "/v1/services/myapp_web")) as { spec: { labels: Record<string, string>; task: { limits: unknown; restartPolicy: unknown } } };
    assert.equal(svc.spec.labels["com.docker.stack.namespace"], "myapp");
    assert.deepEqual(svc.spec.task.limits, { cpus: 0.5, memoryBytes: 256 * 1024 * 1024 });
    assert.deepEqual(svc.spec.task.restartPolicy, { condition: "on-failure", delayMs: 5000, maxAttempts: 3, windowMs: 0 });
    if (objects.secrets) {
      // Every task of api and db read the external secret's file before it served (set -e: no file, no task).
      for (const [service, tasks] of [["myapp_api", 2], ["myapp_db", 1]] as const) {
        const logs = await waitFor(async () => {
          const l = await baton.cliOk("service", "logs", service);
          return l.split(`db_password sha256 ${sha256(dbPassword)}`).length - 1 >= tasks && l;
        }, 10_000, `${tasks} task(s) of ${service} logging the secret's digest`);
        assert.doesNotMatch(logs, new RegExp(dbPassword));
      }
      const api = (await getJson(baton.socket, "/v1/services/myapp_api")) as { spec: { task: { secrets: { name: string; target: string; mode: number }[] } } };
      assert.deepEqual(api.spec.task.secrets.map((r) => ({ name: r.name, target: r.target, mode: r.mode })), [{ name: "db_password", target: "db_password", mode: 0o400 }]);
    }
  });

  test("--dry-run prints the plan and changes nothing", async () => {
    const before = await versions();
    writeFileSync(file, seedForOneNode(objects, 3));
    const out = await baton.cliOk("stack", "deploy", "-c", file, "--dry-run", "myapp");
    assert.match(out, /service\s+myapp_api\s+update\n\s+~ mode\.replicas: 2 → 3\n/);
    assert.match(out, /service\s+myapp_web\s+unchanged/);
    assert.match(out, /dry run, nothing was changed/);
    assert.deepEqual(await versions(), before);
  });

  test("a malformed file or a missing external secret is refused with its path and line; nothing is applied", async () => {
    const before = await versions();
    const bad = join(dir, "bad.yml");
    writeFileSync(bad, seedForOneNode(objects, 3).replace("replicas: 1", "replicas: -1").replace("services:", "services:\n  extra:\n    image: nginx\n    depends_on: [nope]"));
    let r = await baton.cli("stack", "deploy", "-c", bad, "myapp");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /services\.db\.deploy\.replicas: must be an integer >= 0 \(line \d+\)/);
    // The services' secret now names one that does not exist (without a secrets API: an unused one).
    const missing = objects.secrets ? "  db_password:\n    external: true\n    name: missing_secret\n" : "  missing_secret:\n    external: true\n";
    writeFileSync(bad, seedForOneNode(objects, 3).replace(/\nsecrets:[\s\S]*$/, "\n") + `secrets:\n${missing}`);
    r = await baton.cli("stack", "deploy", "-c", bad, "myapp");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /secrets\.(db_password|missing_secret)\.external: external secret "missing_secret" does not exist.*\(line \d+\)/);
    assert.deepEqual(await versions(), before);
  });

  test("a changed replica count updates only that service", async () => {
    const before = await versions();
    const out = await baton.cliOk("stack", "deploy", "-c", file, "--detach=false", "myapp");
    assert.match(out, /Updating service myapp_api\n/);
    assert.match(out, /Service myapp_web unchanged\n/);
    assert.match(out, /Service myapp_db unchanged\n/);
    assert.match(out, /verify: Service myapp_api converged/);
    const after = await versions();
    assert.equal(after.myapp_web, before.myapp_web);
    assert.equal(after.myapp_db, before.myapp_db);
    assert.notEqual(after.myapp_api, before.myapp_api);
    assert.match(await baton.cliOk("stack", "services", "myapp"), /myapp_api\s+replicated\s+3\/3/);
  });

  test("--detach=false exits 1 when an update fails and is rolled back; the service runs its previous spec", async () => {
    const rb = join(dir, "rollback.yml");
    const write = (command: string) =>
      writeFileSync(rb, `services:\n  svc:\n    x-baton: {driver: process}\n    command: ${command}\n    deploy:\n      update_config: {failure_action: rollback, monitor: 2s}\n      rollback_config: {monitor: 1s}\n`);
    write(`node ${HELLO}`);
    await baton.cliOk("stack", "deploy", "-c", rb, "--detach=false", "rb");
    write(`node -e "process.exit(3)"`);
    const r = await baton.cli("stack", "deploy", "-c", rb, "--detach=false", "rb");
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /Updating service rb_svc\n/);
    const svc = (await getJson(baton.socket, "/v1/services/rb_svc")) as { spec: { task: { command: string[] } }; updateStatus: { state: string } };
    assert.equal(svc.updateStatus.state, "rollback_completed");
    assert.deepEqual(svc.spec.task.command, ["node", HELLO]);
    await baton.cliOk("stack", "rm", "rb");
  });

  test("a stack's own secret (file:) and config are created, labelled and delivered; a changed config is refused; a renamed one rolls the service; stack rm removes them, not the external secret", async (t) => {
    if (!objects.secrets) return void t.skip("this API has no secrets/configs endpoints");
    const own = join(dir, "own");
    mkdirSync(own);
    const token = `token-${process.pid}-${Date.now()}`;
    writeFileSync(join(own, "token.txt"), token, { mode: 0o600 });
    writeFileSync(join(own, "app.conf"), "workers=2\n");
    // Logs each file's digest and mode, then stays up.
    writeFileSync(
      join(own, "reader.mjs"),
      `import { readFileSync, statSync } from "node:fs";
import { createHash } from "node:crypto";
for (const f of process.argv.slice(2)) {
  const [kind, name] = f.split(":");
  const p = (kind === "secret" ? process.env.BATON_SECRETS_DIR : process.env.BATON_CONFIGS_DIR) + "/" + name;
  console.log(f + " sha256=" + createHash("sha256").update(readFileSync(p)).digest("hex") + " mode=" + (statSync(p).mode & 0o777).toString(8));
}
setInterval(() => undefined, 1 << 30);
`,
    );
    const stackFile = join(own, "stack.yml");
    const write = (configName?: string) =>
      writeFileSync(
        stackFile,
        `services:
  app:
    x-baton: {driver: process}
    command: node reader.mjs secret:token secret:db.pw config:app.conf
    secrets: [token, {source: db_password, target: db.pw}]
    configs: [{source: app_conf, target: app.conf, mode: 0440}]
secrets:
  token: {file: ./token.txt}
  db_password: {external: true}
configs:
  app_conf: {file: ./app.conf${configName ? `, name: ${configName}` : ""}}
`,
      );
    write();
    // The plan names the objects, never their contents.
    const plan = await baton.cliOk("stack", "deploy", "-c", stackFile, "--dry-run", "own");
    assert.match(plan, /secret\s+own_token\s+create\n\s+secret\s+db_password\s+exists \(external\)\n\s+config\s+own_app_conf\s+create\n\s+service\s+own_app\s+create\n/);
    for (const leak of [token, Buffer.from(token).toString("base64")]) assert.equal(plan.includes(leak), false, "the plan shows no secret data");
    const out = await baton.cliOk("stack", "deploy", "-c", stackFile, "--detach=false", "own");
    for (const leak of [token, Buffer.from(token).toString("base64")]) assert.equal(out.includes(leak), false, "the deploy's output shows no secret data");
    assert.match(out, /Creating secret own_token\nCreating config own_app_conf\nCreating service own_app\n/);
    const secret = (await getJson(baton.socket, "/v1/secrets/own_token")) as Record<string, unknown>;
    assert.deepEqual(secret.labels, { "com.docker.stack.namespace": "own" });
    assert.equal(secret.size, token.length);
    assert.equal(JSON.stringify(secret).includes(Buffer.from(token).toString("base64")), false);
    const expect = (conf: string) => [`secret:token sha256=${sha256(token)} mode=400`, `secret:db.pw sha256=${sha256(dbPassword)} mode=400`, `config:app.conf sha256=${sha256(conf)} mode=440`];
    const logsWith = (lines: string[]) =>
      waitFor(async () => {
        const l = await baton.cliOk("service", "logs", "own_app");
        return lines.every((x) => l.includes(x)) && l;
      }, 10_000, () => `own_app logging ${lines.join(", ")}`);
    await logsWith(expect("workers=2\n"));

    // The same file again: nothing to do.
    const again = await baton.cliOk("stack", "deploy", "-c", stackFile, "own");
    assert.equal(again, "Service own_app unchanged\n");

    // A config cannot change in place (as in docker): refused at its path, nothing applied.
    const version = ((await getJson(baton.socket, "/v1/services/own_app")) as { version: number }).version;
    writeFileSync(join(own, "app.conf"), "workers=4\n");
    const changed = await baton.cli("stack", "deploy", "-c", stackFile, "own");
    assert.equal(changed.code, 1);
    assert.match(changed.stderr, /configs\.app_conf: config "own_app_conf" exists with other content; configs cannot change: give the new content another name .*\(line \d+\)/);
    assert.equal(((await getJson(baton.socket, "/v1/services/own_app")) as { version: number }).version, version);

    // Under another name it is a new config, and the service rolls to it.
    write("own_app_conf_v2");
    const renamed = await baton.cliOk("stack", "deploy", "-c", stackFile, "--detach=false", "own");
    assert.match(renamed, /Creating config own_app_conf_v2\nUpdating service own_app\n/);
    await logsWith(expect("workers=4\n"));

    const removed = await baton.cliOk("stack", "rm", "own");
    assert.match(removed, /Removing service own_app\n/);
    assert.match(removed, /Removing secret own_token\n/);
    assert.match(removed, /Removing config own_app_conf\n/);
    assert.match(removed, /Removing config own_app_conf_v2\n/);
    assert.deepEqual(await names(baton.socket, "secrets"), ["db_password"]);
    assert.deepEqual(await names(baton.socket, "configs"), []);
  });

  test("stack rm removes every service; their tasks stop; nothing is left", async () => {
    const out = await baton.cliOk("stack", "rm", "myapp");
    assert.match(out, /Removing service myapp_web\n/);
    assert.equal(await baton.cliOk("stack", "ls"), "NAME   SERVICES\n");
    assert.deepEqual(await getJson(baton.socket, "/v1/services"), []);
    await waitFor(() => pids.every((p) => !isAlive(p)), 20_000, () => `tasks still alive: ${pids.filter(isAlive).join(", ")}`);
    if (objects.secrets) {
      // The external secret was only used: it stays.
      assert.deepEqual(await names(baton.socket, "secrets"), ["db_password"]);
      assert.deepEqual(await names(baton.socket, "configs"), []);
    }
    if (objects.netvol) {
      const left = ((await getJson(baton.socket, "/v1/networks")) as { name?: string }[]).filter((o) => JSON.stringify(o).includes("myapp"));
      assert.deepEqual(left, []);
    }
  });
});
