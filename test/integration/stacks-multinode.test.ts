// Issue 13 on several hosts: the seed's docker-stack.yml with its constraints as written
// (`node.role == worker`, `node.labels.tier == app`, `node.labels.tier == data`), deployed on a
// manager (h1) and two labelled workers (h2 tier=app, h3 tier=data), each host a network namespace
// with its own Docker Engine (test/harness/netns-docker.ts), so every task is a real container on
// its own host. The only change to the file: image names. Then containers on one host reach a
// service whose only task runs on another by name, through the mesh.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { ROOT, getJson, waitFor } from "../harness/baton.js";
import { buildFromBusybox } from "../harness/images.js";
import { NetnsBaton, createTestNetwork, httpGetFrom, type TestHost, type TestNetwork } from "../harness/netns.js";
import { engineSkipReason, reapStaleEngines, startHostEngines, type HostEngines } from "../harness/netns-docker.js";

interface Row {
  Name: string;
  Node: string;
  DesiredState: string;
  CurrentState: string;
  ContainerId: string | null;
}

/**
 * Stand-ins for the seed's images: what each service does, in its image (no command in the file).
 * PID 1 of a container ignores SIGTERM unless it handles it: the shell traps it and exits, as the
 * real images do, so a stop takes no grace period.
 */
const serve = "httpd -f -p 80 -h /www & trap 'exit 0' TERM; wait";
const IMAGES: Record<string, string[]> = {
  // nginx:alpine → serves / on 80.
  "baton-test/web:latest": [`CMD ["sh", "-c", "${serve}"]`],
  // my-api:latest → needs its secret, then serves.
  "baton-test/api:latest": [`CMD ["sh", "-c", "test -s /run/secrets/db_password && ${serve}"]`],
  // postgres:16-alpine → needs its secret, writes to its data directory, runs until stopped.
  "baton-test/db:latest": [`CMD ["sh", "-c", "test -s /run/secrets/db_password && echo run >> /var/lib/postgresql/data/runs && trap 'exit 0' TERM && while true; do sleep 1; done"]`],
};

/** The seed's file with each image name swapped; nothing else. */
function seedFile(apiReplicas = 2): string {
  const doc = parse(readFileSync(join(ROOT, "test", "fixtures", "stacks", "docker-stack.yml"), "utf8")) as { services: Record<string, { image: string; deploy: { replicas: number } }> };
  doc.services.web!.image = "baton-test/web:latest";
  doc.services.api!.image = "baton-test/api:latest";
  doc.services.db!.image = "baton-test/db:latest";
  doc.services.api!.deploy.replicas = apiReplicas;
  return stringify(doc);
}

describe("the seed's stack file on three hosts, constraints as written, real containers per host", { skip: engineSkipReason() }, () => {
  let net: TestNetwork;
  let engines: HostEngines;
  let h1: TestHost, h2: TestHost, h3: TestHost;
  let m: NetnsBaton;
  const workers: NetnsBaton[] = [];
  const dir = mkdtempSync(join(tmpdir(), "baton-stack-mn-"));
  const file = join(dir, "docker-stack.yml");
  const dbPassword = `pw-${process.pid}-${Date.now()}`;

  const ps = async (what: string[]): Promise<Row[]> =>
    (await m.cliOk(...what, "--format", "json")).trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Row);
  const runningOn = (rows: Row[], prefix: string): string[] =>
    rows.filter((r) => r.Name.startsWith(prefix) && r.DesiredState === "running" && r.CurrentState === "running").map((r) => r.Node).sort();
  const versions = async (): Promise<Record<string, number>> =>
    Object.fromEntries(((await getJson(m.socket, "/v1/services")) as { spec: { name: string }; version: number }[]).map((s) => [s.spec.name, s.version]));
  const names = async (kind: string): Promise<string[]> => ((await getJson(m.socket, `/v1/${kind}`)) as { name: string }[]).map((o) => o.name).sort();
  /** The engine's containers labelled as Baton's, on a host. */
  const batonContainers = (h: TestHost): string[] => engines.cli(h, ["ps", "-aq", "--filter", "label=baton.task.id"]).stdout.split(/\s+/).filter(Boolean);

  /** What the tasks say and what the workers logged, for a failure's message. */
  const diagnosis = async (): Promise<string> =>
    [(await m.cli("stack", "ps", "myapp", "--no-trunc")).stdout, (await m.cli("node", "ls")).stdout, ...workers.map((w) => `--- ${w.host.name}:\n${w.output.slice(-3000)}`)].join("\n");

  before(async () => {
    reapStaleEngines();
    net = await createTestNetwork({ hosts: 3, prefix: "stk" });
    [h1, h2, h3] = [net.hosts[0]!, net.hosts[1]!, net.hosts[2]!];
    // The manager runs no task of the file (web wants workers): only the workers get an engine.
    engines = await startHostEngines(net, [h2, h3], async (docker) => {
      for (const [tag, lines] of Object.entries(IMAGES)) await buildFromBusybox(docker, tag, lines);
    });
    m = new NetnsBaton(net, h1, { argv: ["init", "--advertise-addr", h1.address], logLevel: "info" });
    await m.start();
    const token = (await m.cliOk("join-token", "worker", "-q")).trim();
    await Promise.all(
      [h2, h3].map((h) => {
        const w = new NetnsBaton(net, h, { argv: ["join", "--token", token, `${h1.address}:4242`], logLevel: "info", env: { DOCKER_HOST: `unix://${engines.engine(h).socket}` } });
        workers.push(w);
        return w.start();
      }),
    );
    await waitFor(async () => (await m.cliOk("node", "ls", "-q")).trim().split("\n").length === 3, 15_000, "3 nodes");
    await m.cliOk("node", "update", "--label-add", "tier=app", "h2");
    await m.cliOk("node", "update", "--label-add", "tier=data", "h3");
    // The file's secret is external: created first.
    const secretFile = join(dir, "db_password");
    writeFileSync(secretFile, dbPassword, { mode: 0o600 });
    await m.cliOk("secret", "create", "db_password", secretFile);
  });
  after(async () => {
    for (const w of workers) await w.destroy().catch(() => undefined);
    await m?.destroy().catch(() => undefined);
    await engines?.destroy();
    await net?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test("deploy converges with every service on the nodes its constraint names; stack services and ps show it", async () => {
    writeFileSync(file, seedFile());
    const r = await m.cli("stack", "deploy", "-c", file, "--detach=false", "myapp");
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}\n${await diagnosis()}`);
    const out = r.stdout;
    for (const s of ["web", "api", "db"]) assert.match(out, new RegExp(`verify: Service myapp_${s} converged`));
    const services = (await m.cliOk("stack", "services", "myapp", "--format", "json")).trim().split("\n").map((l) => JSON.parse(l) as { Name: string; Replicas: string; Image: string });
    assert.deepEqual(services.map((s) => `${s.Name} ${s.Replicas}`).sort(), ["myapp_api 2/2", "myapp_db 1/1", "myapp_web 3/3"]);
    const rows = await ps(["stack", "ps", "myapp"]);
    const web = runningOn(rows, "myapp_web.");
    assert.equal(web.length, 3);
    assert.ok(web.every((n) => n === "h2" || n === "h3"), `web only on workers: ${web.join(",")}`);
    assert.deepEqual(runningOn(rows, "myapp_api."), ["h2", "h2"]);
    assert.deepEqual(runningOn(rows, "myapp_db."), ["h3"]);
    // Real containers, each on its own host's engine.
    for (const r of rows.filter((x) => x.CurrentState === "running")) {
      const h = r.Node === "h2" ? h2 : h3;
      assert.ok(r.ContainerId && batonContainers(h).some((id) => r.ContainerId!.startsWith(id)), `${r.Name}'s container on ${r.Node}'s engine`);
    }
  });

  test("web answers on port 80 through the mesh from every node, the manager included", async () => {
    for (const from of [h1, h2, h3]) {
      for (const to of [h1, h2, h3]) {
        const body = await waitFor(() => httpGetFrom(net, from, `http://${to.address}:80/`, 2000), 15_000, `web on ${to.name}:80 from ${from.name}`);
        assert.equal(body, "hello from busybox\n");
      }
    }
  });

  test("api and db read the external secret at /run/secrets/db_password; db's data is in its volume on its node only", async () => {
    const rows = (await ps(["stack", "ps", "myapp"])).filter((r) => r.CurrentState === "running" && /^myapp_(api|db)\./.test(r.Name));
    assert.equal(rows.length, 3);
    for (const r of rows) {
      const cat = engines.cli(r.Node, ["exec", r.ContainerId!, "cat", "/run/secrets/db_password"]);
      assert.equal(cat.code, 0, cat.stderr);
      assert.equal(cat.stdout, dbPassword, `${r.Name} reads the secret`);
    }
    const vol = JSON.parse(engines.cli(h3, ["volume", "inspect", "myapp_pgdata"]).stdout) as { Mountpoint: string }[];
    assert.equal(readFileSync(join(vol[0]!.Mountpoint, "runs"), "utf8"), "run\n");
    assert.notEqual(engines.cli(h2, ["volume", "inspect", "myapp_pgdata"]).code, 0, "no pgdata volume on h2");
  });

  test("a changed replica count updates only that service", async () => {
    const before = await versions();
    writeFileSync(file, seedFile(3));
    const out = await m.cliOk("stack", "deploy", "-c", file, "--detach=false", "myapp");
    assert.match(out, /Updating service myapp_api\n/);
    assert.match(out, /Service myapp_web unchanged\n/);
    assert.match(out, /Service myapp_db unchanged\n/);
    const after = await versions();
    assert.equal(after.myapp_web, before.myapp_web);
    assert.equal(after.myapp_db, before.myapp_db);
    assert.notEqual(after.myapp_api, before.myapp_api);
    assert.deepEqual(runningOn(await ps(["stack", "ps", "myapp"]), "myapp_api."), ["h2", "h2", "h2"]);
  });

  test("a container on h2 reaches a service whose only task runs on h3, by name, through the mesh", async () => {
    await m.cliOk("network", "create", "xnode");
    await m.cliOk("service", "create", "--name", "far", "--network", "xnode", "-p", "80", "--constraint", "node.hostname==h3", "--image", "baton-test/web:latest");
    await m.cliOk("service", "create", "--name", "near", "--network", "xnode", "--constraint", "node.hostname==h2", "--stop-grace-period", "1s", "--image", "baton-test/busybox:latest", "sleep", "1000000");
    const [far] = (await ps(["service", "ps", "far"])).filter((r) => r.CurrentState === "running");
    const [near] = (await ps(["service", "ps", "near"])).filter((r) => r.CurrentState === "running");
    assert.equal(far?.Node, "h3");
    assert.equal(near?.Node, "h2");
    const lookup = await waitFor(() => {
      const r = engines.cli(h2, ["exec", near!.ContainerId!, "nslookup", "far"]);
      return r.code === 0 && /198\.18\.\d+\.\d+/.test(r.stdout) && r.stdout;
    }, 10_000, "nslookup far in near's container");
    assert.match(lookup, /Address:\s+198\.18\.\d+\.\d+/);
    const page = await waitFor(() => {
      const r = engines.cli(h2, ["exec", near!.ContainerId!, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc far 80"]);
      return r.code === 0 && r.stdout.includes("hello from busybox") && r.stdout;
    }, 10_000, "near → far:80 through the mesh");
    assert.match(page, /^HTTP\/1\.[01] 200/);
    // far has no container on h2: the answer came from h3.
    assert.deepEqual(engines.cli(h2, ["ps", "-q", "--filter", "label=baton.service.name=far"]).stdout.trim(), "");
    await m.cliOk("service", "rm", "far", "near");
    await m.cliOk("network", "rm", "xnode");
  });

  test("an attachable network: its engine network is on every node, and a standalone container on it finds its services by name", async () => {
    await m.cliOk("network", "create", "--attachable", "shared");
    await m.cliOk("service", "create", "--name", "solo", "--network", "shared", "-p", "80", "--constraint", "node.hostname==h3", "--image", "baton-test/web:latest");
    // h2 runs no task on it, yet has its engine network.
    await waitFor(() => engines.cli(h2, ["network", "inspect", "baton-shared"]).code === 0, 10_000, "baton-shared on h2");
    const dns = readFileSync(join(workers.find((w) => w.host === h2)!.dataDir, "container-dns"), "utf8").trim();
    const run = (script: string) => engines.cli(h2, ["run", "--rm", "--network", "baton-shared", "--dns", dns, "baton-test/busybox:latest", "sh", "-c", script]);
    const page = await waitFor(() => {
      const r = run("nslookup solo && printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc solo 80");
      return r.code === 0 && r.stdout.includes("hello from busybox") && r.stdout;
    }, 20_000, () => `a standalone container on h2 reaching solo: ${JSON.stringify(run("nslookup solo"))}`);
    assert.match(page, /Address:?\s+(1: )?198\.18\.\d+\.\d+/);
    await m.cliOk("service", "rm", "solo");
    await m.cliOk("network", "rm", "shared");
    await waitFor(() => engines.cli(h2, ["network", "inspect", "baton-shared"]).code !== 0, 10_000, "baton-shared removed from h2 with the network");
  });

  test("stack rm leaves nothing of the stack: services, containers, networks (engine ones too); the external secret and the volume stay, as in docker", async () => {
    const out = await m.cliOk("stack", "rm", "myapp");
    assert.match(out, /Removing service myapp_web\n/);
    assert.deepEqual(await getJson(m.socket, "/v1/services"), []);
    assert.deepEqual(await names("networks"), []);
    assert.deepEqual(await names("secrets"), ["db_password"]);
    assert.deepEqual(await names("volumes"), ["myapp_pgdata"]);
    for (const h of [h2, h3]) {
      await waitFor(() => batonContainers(h).length === 0, 30_000, () => `containers left on ${h.name}: ${batonContainers(h).join(" ")}`);
      await waitFor(() => !engines.cli(h, ["network", "ls", "--format", "{{.Name}}"]).stdout.includes("baton-"), 15_000, () => `engine networks left on ${h.name}: ${engines.cli(h, ["network", "ls"]).stdout}`);
    }
    // The volume's data stays on its node until `baton volume rm`.
    const vol = JSON.parse(engines.cli(h3, ["volume", "inspect", "myapp_pgdata"]).stdout) as { Mountpoint: string }[];
    assert.equal(readFileSync(join(vol[0]!.Mountpoint, "runs"), "utf8"), "run\n");
  });

  test("volume rm removes the volume's data on the node that has it, as docker removes a volume's data", async () => {
    await m.cliOk("volume", "rm", "myapp_pgdata");
    await waitFor(() => engines.cli(h3, ["volume", "inspect", "myapp_pgdata"]).code !== 0, 15_000, () => `myapp_pgdata still on h3: ${engines.cli(h3, ["volume", "ls"]).stdout}`);
    assert.deepEqual(await names("volumes"), []);
  });
});
