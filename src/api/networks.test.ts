import { test } from "node:test";
import assert from "node:assert/strict";
import { memoryApi } from "../../test/harness/api.js";

const app = () => memoryApi();

type Problem = { code: string; message: string; fields: { path: (string | number)[]; problem: string }[] };
const fieldsOf = (body: Problem): string[] => body.fields.map((f) => `${f.path.join(".")}: ${f.problem}`);

test("networks: create, unique names, list, inspect with the services on it, rm refused while used", async () => {
  const { a, store, post } = await app();
  const created = await post("/v1/networks", { name: "back", internal: true });
  assert.equal(created.statusCode, 201);
  assert.deepEqual({ ...(created.json() as object), id: "", version: 0, createdAt: 0, updatedAt: 0 }, { id: "", version: 0, createdAt: 0, updatedAt: 0, name: "back", driver: "overlay", internal: true, attachable: false, labels: {} });
  const dup = await post("/v1/networks", { name: "back" });
  assert.equal(dup.statusCode, 409);
  assert.equal(dup.json().code, "NAME_IN_USE");
  assert.equal((await post("/v1/networks", { name: "front", driver: "vxlan" })).statusCode, 400);

  const svc = await post("/v1/services", { name: "db", command: ["sleep", "1000"], networks: ["back"] });
  assert.equal(svc.statusCode, 201);
  // The spec keeps the network's id, so a later network of the same name is another one.
  assert.deepEqual(store.view((tx) => tx.serviceByName("db"))!.spec.task.networks, [created.json().id]);
  const inspect = await a.inject({ method: "GET", url: "/v1/networks/back" });
  assert.deepEqual(inspect.json().services, ["db"]);

  const refused = await a.inject({ method: "DELETE", url: "/v1/networks/back" });
  assert.equal(refused.statusCode, 409);
  assert.equal(refused.json().code, "IN_USE");
  assert.match(refused.json().message, /in use by service db/);
  await a.inject({ method: "DELETE", url: "/v1/services/db" });
  assert.equal((await a.inject({ method: "DELETE", url: "/v1/networks/back" })).statusCode, 200);
  assert.deepEqual((await a.inject({ method: "GET", url: "/v1/networks" })).json(), []);
});

test("a service on an unknown network, or only on internal ones with a published port, is refused whole", async () => {
  const { store, post } = await app();
  await post("/v1/networks", { name: "back", internal: true });
  const before = store.revision();
  const unknown = await post("/v1/services", { name: "web", command: ["x"], networks: ["back", "nope"] });
  assert.equal(unknown.statusCode, 400);
  assert.deepEqual(fieldsOf(unknown.json()), ['networks.1: network "nope" not found (baton network create nope)']);
  const published = await post("/v1/services", { name: "web", command: ["x"], networks: ["back"], publish: ["8080:80", "80"] });
  assert.equal(published.statusCode, 400);
  assert.deepEqual(fieldsOf(published.json()), ["publish.0.published: the service is only on internal networks (back): it cannot publish ports"]);
  assert.equal(store.revision(), before, "nothing written");
  // Also on a non-internal network, it may publish.
  await post("/v1/networks", { name: "front" });
  assert.equal((await post("/v1/services", { name: "web", command: ["x"], networks: ["back", "front"], publish: ["18080:80"] })).statusCode, 201);
});

test("service update checks networks too, with paths under spec", async () => {
  const { a, post } = await app();
  const s = (await post("/v1/services", { name: "web", command: ["x"] })).json();
  const r = await a.inject({ method: "POST", url: `/v1/services/${s.id}/update`, payload: { version: s.version, spec: { name: "web", command: ["x"], networks: ["ghost"] } } });
  assert.equal(r.statusCode, 400);
  assert.deepEqual(fieldsOf(r.json()), ['spec.networks.0: network "ghost" not found (baton network create ghost)']);
});

test("volumes: a volume mount creates its volume; rm refused while used; names unique", async () => {
  const { a, post } = await app();
  assert.equal((await post("/v1/volumes", { name: "cache" })).statusCode, 201);
  assert.equal((await post("/v1/volumes", { name: "cache" })).json().code, "NAME_IN_USE");
  const svc = await post("/v1/services", { name: "db", command: ["x"], mounts: [{ type: "volume", source: "data", target: "/data" }] });
  assert.equal(svc.statusCode, 201);
  const names = ((await a.inject({ method: "GET", url: "/v1/volumes" })).json() as { name: string }[]).map((v) => v.name);
  assert.deepEqual(names, ["cache", "data"]);
  const refused = await a.inject({ method: "DELETE", url: "/v1/volumes/data" });
  assert.equal(refused.statusCode, 409);
  assert.equal(refused.json().code, "IN_USE");
  assert.equal((await a.inject({ method: "DELETE", url: "/v1/volumes/cache" })).statusCode, 200);
  assert.equal((await a.inject({ method: "GET", url: "/v1/volumes/cache" })).statusCode, 404);
});

test("mount problems are named by field; nothing is created", async () => {
  const { store, post } = await app();
  const r = await post("/v1/services", {
    name: "web",
    driver: "docker",
    image: "busybox:1",
    command: [],
    mounts: [
      { type: "bind", source: "relative/dir", target: "/a" },
      { type: "volume", source: "no/slash", target: "/b" },
      { type: "tmpfs", source: "x", target: "c" },
      { type: "volume", source: "ok", target: "/a/" },
      { type: "bind", source: "/etc", target: "/e", tmpfsSize: "1m" },
      { type: "tmpfs", target: "/t", tmpfsSize: "lots" },
    ],
  });
  assert.equal(r.statusCode, 400);
  assert.deepEqual(fieldsOf(r.json()), [
    'mounts.0.source: "relative/dir" is not an absolute host path without ".."',
    'mounts.1.source: "no/slash" is not a volume name (letters, digits, _ . -; a bind mount needs type bind)',
    'mounts.2.target: "c" is not an absolute path without ".."',
    "mounts.2.source: a tmpfs mount has no source",
    "mounts.3.target: /a is already the target of mounts[0]",
    "mounts.4.tmpfsSize: only a tmpfs mount has a size",
    'mounts.5.tmpfsSize: invalid size "lots" (use e.g. 64m)',
  ]);
  const proc = await post("/v1/services", { name: "p", command: ["x"], mounts: [{ type: "tmpfs", target: "/t" }, { type: "bind", source: "/srv", target: "/srv", readOnly: true }] });
  assert.deepEqual(fieldsOf(proc.json()), ["mounts.0.type: the process driver cannot give a host process a tmpfs mount (use driver docker)", "mounts.1.readOnly: the process driver cannot enforce a read-only mount (use driver docker)"]);
  const dnsrr = await post("/v1/services", { name: "d", command: ["x"], endpointMode: "dnsrr", publish: ["8080:80"] });
  assert.deepEqual(fieldsOf(dnsrr.json()), ["endpointMode: dnsrr has no service address: publish ports with mode=host, or use vip"]);
  assert.equal(store.revision(), 0);
  assert.equal(store.view((tx) => tx.list("volumes")).length, 0);
});

test("a bad network or volume body is named as such, field by field", async () => {
  const { post } = await app();
  const n = await post("/v1/networks", { name: "bad name", internal: "yes" });
  assert.equal(n.statusCode, 400);
  assert.match(n.json().message, /^invalid network: /);
  assert.deepEqual(fieldsOf(n.json()).map((f) => f.split(":")[0]).sort(), ["internal", "name"]);
  const v = await post("/v1/volumes", { name: "v", driver: "nfs" });
  assert.match(v.json().message, /^invalid volume: driver: must be one of: local/);
});
