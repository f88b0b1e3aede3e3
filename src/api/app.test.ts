import { test } from "node:test";
import assert from "node:assert/strict";
import { memoryApi } from "../../test/harness/api.js";

const app = () => memoryApi();

const create = (body: unknown) => ({ method: "POST" as const, url: "/v1/services", payload: body as object });

test("a valid service is created and stored before the answer", async () => {
  const { a, store } = await app();
  const r = await a.inject(create({ name: "web", replicas: 3, command: ["node", "s.js"], env: ["A=1"], restartPolicy: { delay: "1s" } }));
  assert.equal(r.statusCode, 201);
  const s = store.view((tx) => tx.serviceByName("web"))!;
  assert.equal(s.id, r.json().id);
  assert.deepEqual(s.spec.mode, { kind: "replicated", replicas: 3 });
  assert.equal(s.spec.task.restartPolicy.delayMs, 1000);
  assert.deepEqual(s.spec.task.env, { A: "1" });
});

test("bad input: 400 with code and every field problem; the store is unchanged", async () => {
  const { a, store } = await app();
  const r = await a.inject(create({ name: "a/b", replicas: -1, command: ["x"], replcas: 2, restartPolicy: { condition: "maybe", delay: "soon" } }));
  assert.equal(r.statusCode, 400);
  const body = r.json() as { code: string; fields: { path: (string | number)[]; problem: string }[] };
  assert.equal(body.code, "VALIDATION_FAILED");
  const byPath = Object.fromEntries(body.fields.map((f) => [f.path.join("."), f.problem]));
  assert.equal(byPath["replicas"], "must be an integer >= 0");
  assert.equal(byPath["replcas"], "unknown field");
  assert.equal(byPath["restartPolicy.condition"], "must be one of: none, on-failure, any");
  assert.equal(byPath["restartPolicy.delay"], 'invalid duration "soon" (use e.g. 500ms, 10s, 1m30s)');
  assert.match(byPath["name"]!, /must start with a letter or digit/);
  assert.equal(store.revision(), 0);
});

test("a missing command and a wrong type are named", async () => {
  const { a } = await app();
  const r = await a.inject(create({ name: "x", replicas: "3" }));
  const fields = (r.json() as { fields: { path: string[]; problem: string }[] }).fields;
  assert.deepEqual(fields.map((f) => `${f.path.join(".")}: ${f.problem}`).sort(), ["command: is required", "replicas: must be an integer"]);
});

test("a body that is not JSON is a 400, a huge one a 413", async () => {
  const { a } = await app();
  const bad = await a.inject({ method: "POST", url: "/v1/services", payload: "{nope", headers: { "content-type": "application/json" } });
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.json().code, "BAD_REQUEST");
  const huge = await a.inject(create({ name: "x", command: ["x"], labels: { a: "x".repeat(2 * 1024 * 1024) } }));
  assert.equal(huge.statusCode, 413);
  assert.equal(huge.json().code, "PAYLOAD_TOO_LARGE");
});

test("duplicate names are a 409 NAME_IN_USE", async () => {
  const { a } = await app();
  assert.equal((await a.inject(create({ name: "web", command: ["x"] }))).statusCode, 201);
  const r = await a.inject(create({ name: "web", command: ["y"] }));
  assert.equal(r.statusCode, 409);
  assert.equal(r.json().code, "NAME_IN_USE");
});

test("services are found by id, name or unique prefix; unknown ones are a 404", async () => {
  const { a } = await app();
  const id = (await a.inject(create({ name: "web", command: ["x"] }))).json().id as string;
  for (const ref of [id, "web", id.slice(0, 5)]) assert.equal((await a.inject({ method: "GET", url: `/v1/services/${ref}` })).json().id, id);
  const r = await a.inject({ method: "GET", url: "/v1/services/nope" });
  assert.equal(r.statusCode, 404);
  assert.equal(r.json().code, "NOT_FOUND");
});

test("scale changes replicas but not the spec version", async () => {
  const { a, store } = await app();
  await a.inject(create({ name: "web", command: ["x"] }));
  const r = await a.inject({ method: "POST", url: "/v1/services/web/scale", payload: { replicas: 4 } });
  assert.equal(r.statusCode, 200);
  const s = store.view((tx) => tx.serviceByName("web"))!;
  assert.deepEqual(s.spec.mode, { kind: "replicated", replicas: 4 });
  assert.equal(s.specVersion, 1);
});

test("the OpenAPI document describes the service schema", async () => {
  const { a } = await app();
  const doc = (await a.inject({ method: "GET", url: "/openapi.json" })).json() as { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown> } }> } }>> };
  assert.match(doc.openapi, /^3\./);
  const body = doc.paths["/v1/services"]!.post!.requestBody!.content["application/json"]!.schema;
  assert.ok(body.properties.replicas && body.properties.restartPolicy);
});

test("an update after a scale keeps the scaled replica count (the input form follows the scale)", async () => {
  const { a } = await app();
  const created = (await a.inject(create({ name: "web", replicas: 2, command: ["node", "s.js"] }))).json() as { id: string };
  await a.inject({ method: "POST", url: `/v1/services/${created.id}/scale`, payload: { replicas: 5 } });
  const svc = (await a.inject({ method: "GET", url: `/v1/services/${created.id}` })).json() as { version: number; specInput: Record<string, unknown> };
  const r = await a.inject({ method: "POST", url: `/v1/services/${created.id}/update`, payload: { version: svc.version, spec: { ...svc.specInput, env: ["V=2"] } } });
  assert.equal(r.statusCode, 200);
  assert.deepEqual((r.json() as { spec: { mode: unknown } }).spec.mode, { kind: "replicated", replicas: 5 });
});

test("rebalance: an unknown service is a 404; a global one a 400 naming the problem; nothing is changed", async () => {
  const { a, store } = await app();
  const unknown = await a.inject({ method: "POST", url: "/v1/services/nope/rebalance" });
  assert.equal(unknown.statusCode, 404);
  assert.deepEqual([unknown.json().code, unknown.json().message], ["NOT_FOUND", 'service "nope" not found']);
  await a.inject(create({ name: "agent", mode: "global", command: ["x"] }));
  const rev = store.revision();
  const global = await a.inject({ method: "POST", url: "/v1/services/agent/rebalance" });
  assert.equal(global.statusCode, 400);
  const body = global.json() as { code: string; message: string; fields: { path: string[]; problem: string }[] };
  assert.equal(body.code, "VALIDATION_FAILED");
  assert.equal(body.message, 'service "agent" is global (one task per eligible node); only replicated services can be rebalanced');
  assert.deepEqual(body.fields, [{ path: ["mode"], problem: "cannot rebalance a global service" }]);
  assert.equal(store.revision(), rev);
});

test("rebalance of a service with no tasks placed is a no-op that says so", async () => {
  const { a } = await app();
  await a.inject(create({ name: "web", replicas: 2, command: ["x"] }));
  const r = await a.inject({ method: "POST", url: "/v1/services/web/rebalance" });
  assert.equal(r.statusCode, 200);
  assert.deepEqual([r.json().moves, r.json().message], [[], "web is balanced: nothing to move (no tasks placed)"]);
});

test("node update: rebalance must be a boolean", async () => {
  const { a } = await app();
  const r = await a.inject({ method: "POST", url: "/v1/nodes/x/update", payload: { rebalance: "yes" } });
  assert.equal(r.statusCode, 400);
  assert.deepEqual(r.json().fields, [{ path: ["rebalance"], problem: "must be a boolean" }]);
});

test("store snapshot on a store that is not etcd: 400 saying what to back up instead", async () => {
  const { a } = await app();
  const r = await a.inject({ method: "GET", url: "/v1/store/snapshot" });
  assert.equal(r.statusCode, 400);
  assert.equal(r.json().code, "BAD_REQUEST");
  assert.match(r.json().message, /not etcd: back up DIR\/store\.db/);
  const m = await a.inject({ method: "GET", url: "/v1/store/members" });
  assert.equal(m.statusCode, 400);
  assert.match(m.json().message, /not etcd: it has no members/);
});
