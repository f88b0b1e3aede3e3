// Issue 13 (stacks): the seed's docker-stack.yml whole (networks, the internal one too, the named
// volume, the external secret), its images swapped for process-driver services, deployed by the
// real CLI against a real `baton up`: converges, is listed, a one-replica change updates one
// service, --dry-run and a bad file change nothing, stack rm removes the stack's services and
// networks and keeps its volume (docker's behaviour).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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

/** A POSIX sh command for a stack file: `$$` keeps a `$` from the stack's interpolation. */
const readsSecretThenServes = `set -e; h=$$(sha256sum < "$$BATON_SECRETS_DIR/db_password"); echo "db_password sha256 $\${h%% *}"; exec node ${HELLO}`;
/**
 * db's `pgdata:/var/lib/postgresql/data`: for a process task the stack's volume myapp_pgdata is a
 * directory of the node, given as BATON_VOLUME_MYAPP_PGDATA and (by target) BATON_MOUNT_VAR_LIB_POSTGRESQL_DATA.
 */
const writesVolumeThenServes = `set -e; test "$$BATON_VOLUME_MYAPP_PGDATA" = "$$BATON_MOUNT_VAR_LIB_POSTGRESQL_DATA"; echo run >> "$$BATON_MOUNT_VAR_LIB_POSTGRESQL_DATA/runs"; ${readsSecretThenServes}`;

/**
 * The seed's file with each image replaced by the hello server on the process driver, port 80 by
 * 18480 (no root), and constraints one node satisfies (the node is a manager labelled tier=app).
 * The services with the secret read its file (and log its digest) before they serve; db appends
 * a line to its volume first. Everything else (networks, volumes, secrets) is the seed's.
 */
function seedForOneNode(apiReplicas = 2): string {
  const doc = parse(readFileSync(join(ROOT, "test", "fixtures", "stacks", "docker-stack.yml"), "utf8")) as Doc;
  for (const s of Object.values(doc.services!)) {
    delete s.image;
    s["x-baton"] = { driver: "process" };
    s.command = s.volumes ? ["sh", "-c", writesVolumeThenServes] : s.secrets ? ["sh", "-c", readsSecretThenServes] : `node ${HELLO}`;
  }
  const deploy = (name: string) => doc.services![name]!.deploy as { replicas: number; placement: { constraints: string[] } };
  doc.services!.web!.ports = ["18480:80"];
  deploy("web").placement.constraints = ["node.role == manager"];
  deploy("api").replicas = apiReplicas;
  deploy("db").placement.constraints = ["node.labels.tier != edge"];
  return stringify(doc);
}

const sha256 = (s: string): string => createHash("sha256").update(s).digest("hex");
const names = async (socket: string, kind: string): Promise<string[]> => ((await getJson(socket, `/v1/${kind}`)) as { name: string }[]).map((o) => o.name).sort();

describe("baton stack: the seed's stack file", () => {
  const baton = new BatonProcess();
  const dir = mkdtempSync(join(tmpdir(), "baton-stack-it-"));
  const file = join(dir, "docker-stack.yml");
  const dbPassword = `pw-${process.pid}`;
  const pgdataRuns = (): string => join(baton.dataDir, "agent", "volumes", "myapp_pgdata", "runs");
  const versions = async (): Promise<Record<string, number>> =>
    Object.fromEntries(((await getJson(baton.socket, "/v1/services")) as { spec: { name: string }; version: number }[]).map((s) => [s.spec.name, s.version]));

  before(async () => {
    await baton.start();
    const { nodeId } = await baton.info();
    await baton.cliOk("node", "update", "--label-add", "tier=app", nodeId);
    // The seed's secret is external: created first, as the issue says.
    assert.equal(await postJson(baton.socket, "/v1/secrets", { name: "db_password", data: Buffer.from(dbPassword).toString("base64") }), 201);
  });
  after(async () => {
    await baton.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  let pids: number[] = [];

  test("deploy --detach=false converges; stack ls, services and ps show it; web answers on its port", async () => {
    writeFileSync(file, seedForOneNode());
    const out = await baton.cliOk("stack", "deploy", "-c", file, "--detach=false", "myapp");
    for (const s of ["web", "api", "db"]) assert.match(out, new RegExp(`Creating service myapp_${s}\\n`));
    for (const s of ["web", "api", "db"]) assert.match(out, new RegExp(`verify: Service myapp_${s} converged`));
    assert.match(await baton.cliOk("stack", "ls"), /^NAME\s+SERVICES\nmyapp\s+3\n$/);
    const services = (await baton.cliOk("stack", "services", "myapp", "--format", "json")).trim().split("\n").map((l) => JSON.parse(l) as { Name: string; Replicas: string });
    assert.deepEqual(services.map((s) => `${s.Name} ${s.Replicas}`).sort(), ["myapp_api 2/2", "myapp_db 1/1", "myapp_web 3/3"]);
    const ps = (await baton.cliOk("stack", "ps", "myapp", "--format", "json")).trim().split("\n").map((l) => JSON.parse(l) as { Name: string; CurrentState: string; Pid: number });
    assert.deepEqual(ps.filter((t) => t.CurrentState === "running").map((t) => t.Name).sort(), ["myapp_api.1", "myapp_api.2", "myapp_db.1", "myapp_web.1", "myapp_web.2", "myapp_web.3"]);
    pids = ps.map((t) => t.Pid);
    // The whole file: its networks (backend internal), its volume, db's data in the volume.
    const nets = (await getJson(baton.socket, "/v1/networks")) as { name: string; driver: string; internal: boolean; labels: Record<string, string> }[];
    assert.deepEqual(nets.map((n) => `${n.name} ${n.driver} internal=${n.internal} ${n.labels["com.docker.stack.namespace"]}`).sort(), ["myapp_backend overlay internal=true myapp", "myapp_frontend overlay internal=false myapp"]);
    assert.deepEqual(await names(baton.socket, "volumes"), ["myapp_pgdata"]);
    await waitFor(() => existsSync(pgdataRuns()), 10_000, "db's line in its volume");
    assert.match(await waitFor(() => httpGet(18480), 5000, "web answering on 18480"), /^hello from myapp_web\.\d/);
    const svc = (await getJson(baton.socket, "/v1/services/myapp_web")) as { spec: { labels: Record<string, string>; task: { limits: unknown; restartPolicy: unknown } } };
    assert.equal(svc.spec.labels["com.docker.stack.namespace"], "myapp");
    assert.deepEqual(svc.spec.task.limits, { cpus: 0.5, memoryBytes: 256 * 1024 * 1024 });
    assert.deepEqual(svc.spec.task.restartPolicy, { condition: "on-failure", delayMs: 5000, maxAttempts: 3, windowMs: 0 });
    {
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
    writeFileSync(file, seedForOneNode(3));
    const out = await baton.cliOk("stack", "deploy", "-c", file, "--dry-run", "myapp");
    assert.match(out, /service\s+myapp_api\s+update\n\s+~ mode\.replicas: 2 → 3\n/);
    assert.match(out, /service\s+myapp_web\s+unchanged/);
    assert.match(out, /dry run, nothing was changed/);
    assert.deepEqual(await versions(), before);
  });

  test("a malformed file or a missing external secret is refused with its path and line; nothing is applied", async () => {
    const before = await versions();
    const bad = join(dir, "bad.yml");
    writeFileSync(bad, seedForOneNode(3).replace("replicas: 1", "replicas: -1").replace("services:", "services:\n  extra:\n    image: nginx\n    depends_on: [nope]"));
    let r = await baton.cli("stack", "deploy", "-c", bad, "myapp");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /services\.db\.deploy\.replicas: must be an integer >= 0 \(line \d+\)/);
    // The services' secret now names one that does not exist (without a secrets API: an unused one).
    const missing = "  db_password:\n    external: true\n    name: missing_secret\n";
    writeFileSync(bad, seedForOneNode(3).replace(/\nsecrets:[\s\S]*$/, "\n") + `secrets:\n${missing}`);
    r = await baton.cli("stack", "deploy", "-c", bad, "myapp");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /secrets\.(db_password|missing_secret)\.external: external secret "missing_secret" does not exist.*\(line \d+\)/);
    assert.deepEqual(await versions(), before);
  });

  test("a new service publishing a port a service outside the stack holds: refused before the first write, naming the port and the holder; nothing of the stack is created", async () => {
    await baton.cliOk("service", "create", "--name", "holder", "--detach", "-p", "18490:80", "node", HELLO);
    const before = { services: await names(baton.socket, "services"), networks: await names(baton.socket, "networks"), secrets: await names(baton.socket, "secrets"), configs: await names(baton.socket, "configs") };
    const dir2 = mkdtempSync(join(tmpdir(), "baton-stack-port-"));
    const f = join(dir2, "stack.yml");
    writeFileSync(join(dir2, "token.txt"), "t0ken");
    // first: fine alone; second: publishes the held port. Both on a network the stack creates, with its own secret and config.
    writeFileSync(
      f,
      `services:
  first:
    x-baton: {driver: process}
    command: node ${HELLO}
    networks: [net]
    secrets: [token]
  second:
    x-baton: {driver: process}
    command: node ${HELLO}
    networks: [net]
    configs: [conf]
    ports: ["18490:80"]
networks:
  net: {}
secrets:
  token: {file: ./token.txt}
configs:
  conf: {content: "x"}
`,
    );
    const r = await baton.cli("stack", "deploy", "-c", f, "portclash");
    rmSync(dir2, { recursive: true, force: true });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /stack portclash not deployed, nothing was changed: services\.second\.ports\[0\]\.published: 18490 is already published by service "holder" \(line 12\)/);
    assert.doesNotMatch(r.stderr, /not found/, "references to what the deploy would create are not problems");
    assert.equal(r.stdout, "");
    const after = { services: await names(baton.socket, "services"), networks: await names(baton.socket, "networks"), secrets: await names(baton.socket, "secrets"), configs: await names(baton.socket, "configs") };
    assert.deepEqual(after, before);
    await baton.cliOk("service", "rm", "holder");
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

  test("a stack's own secret (file:) and config are created, labelled and delivered; a changed config or secret file is refused; a renamed config rolls the service; stack rm removes them, not the external secret", async () => {
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
    assert.match(changed.stderr, /configs\.app_conf: config "own_app_conf" exists with other content; configs are immutable: rename it \(e\.g\. app_conf_v2\) to rotate \(line \d+\)/);
    assert.equal(((await getJson(baton.socket, "/v1/services/own_app")) as { version: number }).version, version);
    // Nor can a secret, though the API never answers its data: the manager compares it.
    writeFileSync(join(own, "token.txt"), "another token");
    const changedSecret = await baton.cli("stack", "deploy", "-c", stackFile, "own");
    assert.equal(changedSecret.code, 1);
    assert.match(changedSecret.stderr, /secrets\.token: secret "own_token" exists with other content; secrets are immutable: rename it \(e\.g\. token_v2\) to rotate \(line 8\)/);
    assert.equal(changedSecret.stderr.includes("another token") || changedSecret.stderr.includes(token), false, "the error shows no secret data");
    assert.equal(((await getJson(baton.socket, "/v1/services/own_app")) as { version: number }).version, version);
    writeFileSync(join(own, "token.txt"), token);

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
    // The external secret was only used: it stays.
    assert.deepEqual(await names(baton.socket, "secrets"), ["db_password"]);
    assert.deepEqual(await names(baton.socket, "configs"), []);
    // Its networks go; its volume stays with its data, as docker keeps volumes.
    assert.match(out, /Removing network myapp_frontend\n/);
    assert.match(out, /Removing network myapp_backend\n/);
    assert.match(out, /Keeping volume myapp_pgdata /);
    assert.deepEqual(await names(baton.socket, "networks"), []);
    assert.deepEqual(await names(baton.socket, "volumes"), ["myapp_pgdata"]);
    assert.match(readFileSync(pgdataRuns(), "utf8"), /^run\n/);
    // Removing the volume removes its data (the node's directory), as docker's volume rm does.
    await baton.cliOk("volume", "rm", "myapp_pgdata");
    await waitFor(() => !existsSync(pgdataRuns()), 10_000, "myapp_pgdata's directory removed");
    assert.deepEqual(await names(baton.socket, "volumes"), []);
  });
});
