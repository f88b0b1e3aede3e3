import { test } from "node:test";
import assert from "node:assert/strict";
import { memoryApi } from "../../test/harness/api.js";
import { createServer } from "node:net";

const app = () => memoryApi();

type Problem = { code: string; fields: { path: (string | number)[]; problem: string }[] };
const fieldsOf = (body: Problem): string[] => body.fields.map((f) => `${f.path.join(".")}: ${f.problem}`);

test("create dry run: what would be created (network ids, volumes to make, a VIP), nothing written", async () => {
  const { store, post } = await app();
  const net = (await post("/v1/networks", { name: "back" })).json() as { id: string };
  const before = store.revision();
  const r = await post("/v1/services?dryRun=true", { name: "db", command: ["x"], networks: ["back"], publish: ["80"], mounts: [{ type: "volume", source: "data", target: "/data" }] });
  assert.equal(r.statusCode, 200);
  const body = r.json() as { dryRun: boolean; name: string; spec: { task: { networks: string[] } }; volumes: string[]; vip: boolean };
  assert.deepEqual([body.dryRun, body.name, body.spec.task.networks, body.volumes, body.vip], [true, "db", [net.id], ["data"], true]);
  assert.equal(store.revision(), before, "nothing written");
  assert.equal(store.view((tx) => tx.serviceByName("db")), undefined);
});

test("create dry run: every problem at once — references, networks, the name, a port another service holds, a port a program holds", async () => {
  const { store, post } = await app();
  assert.equal((await post("/v1/services", { name: "web", command: ["x"], publish: ["18181:80"] })).statusCode, 201);
  const holder = createServer();
  await new Promise<void>((r) => holder.listen({ port: 0, host: "0.0.0.0" }, r));
  const held = (holder.address() as { port: number }).port;
  try {
    const before = store.revision();
    const r = await post("/v1/services?dryRun=1", { name: "web", command: ["x"], networks: ["nope"], secrets: [{ source: "ghost" }], publish: ["18181:80", `${held}:81`] });
    assert.equal(r.statusCode, 400);
    assert.deepEqual(fieldsOf(r.json()).sort(), [
      'name: "web" is already in use',
      'networks.0: network "nope" not found (baton network create nope)',
      `publish.1.published: ${held}/tcp is in use on this host by a program outside Baton`,
      'publish.0.published: 18181 is already published by service "web"',
      'secrets.0.source: secret "ghost" not found',
    ].sort());
    assert.equal(store.revision(), before, "nothing written");
  } finally {
    holder.close();
  }
});

test("create dry run: a body that is wrong in itself is refused as a create would be; dryRun takes only true/false/1/0", async () => {
  const { post } = await app();
  const r = await post("/v1/services?dryRun=true", { name: "web", command: ["x"], replicas: -1 });
  assert.equal(r.statusCode, 400);
  assert.match(fieldsOf(r.json()).join("\n"), /^replicas: /m);
  assert.equal((await post("/v1/services?dryRun=yes", { name: "web", command: ["x"] })).statusCode, 400);
});

test("service inspect names the networks whose ids the spec keeps", async () => {
  const { a, post } = await app();
  const back = (await post("/v1/networks", { name: "back" })).json() as { id: string };
  const front = (await post("/v1/networks", { name: "front" })).json() as { id: string };
  await post("/v1/services", { name: "api", command: ["x"], networks: ["front", "back"] });
  const svc = (await a.inject({ method: "GET", url: "/v1/services/api" })).json() as { spec: { task: { networks: string[] } }; networks: unknown };
  assert.deepEqual(svc.spec.task.networks, [front.id, back.id]);
  assert.deepEqual(svc.networks, [{ id: front.id, name: "front" }, { id: back.id, name: "back" }]);
});
