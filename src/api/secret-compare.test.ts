import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { testApi } from "../../test/harness/api.js";
import { createMemoryStore } from "../store/memory/memory-store.js";
import { silentLogger } from "../lib/log.js";
import { secretBox } from "../secrets/data-key.js";
import { FakeClock } from "../../test/harness/fake-clock.js";

const b64 = (s: string): string => Buffer.from(s).toString("base64");

test("compare answers whether a secret's or config's content is the given one, and never the content", async () => {
  const clock = new FakeClock();
  const store = createMemoryStore({ clock });
  const logged: string[] = [];
  const log = silentLogger();
  for (const level of ["info", "warn", "error", "debug"] as const) {
    const orig = log[level].bind(log);
    (log as unknown as Record<string, unknown>)[level] = (...args: unknown[]) => (logged.push(JSON.stringify(args)), orig(...(args as [string])));
  }
  const a = await testApi({ store, clock, log, secrets: secretBox(randomBytes(32)) });
  const post = (url: string, payload: object) => a.inject({ method: "POST", url, payload });
  assert.equal((await post("/v1/secrets", { name: "db_password", data: b64("hunter2-s3cret") })).statusCode, 201);
  assert.equal((await post("/v1/configs", { name: "conf", data: b64("listen 80") })).statusCode, 201);

  const same = await post("/v1/secrets/db_password/compare", { data: b64("hunter2-s3cret") });
  assert.equal(same.statusCode, 200);
  assert.deepEqual(same.json(), { same: true });
  assert.deepEqual((await post("/v1/secrets/db_password/compare", { data: b64("hunter2-s3creT") })).json(), { same: false });
  assert.deepEqual((await post("/v1/secrets/db_password/compare", { data: b64("hunter2") })).json(), { same: false }, "another length");
  assert.deepEqual((await post("/v1/configs/conf/compare", { data: b64("listen 80") })).json(), { same: true });
  assert.deepEqual((await post("/v1/configs/conf/compare", { data: b64("listen 81") })).json(), { same: false });

  const missing = await post("/v1/secrets/nope/compare", { data: b64("x") });
  assert.equal(missing.statusCode, 404);
  const empty = await post("/v1/secrets/db_password/compare", { data: "" });
  assert.equal(empty.statusCode, 400);
  assert.match(empty.body, /data/);
  assert.equal((await post("/v1/secrets/db_password/compare", {})).statusCode, 400);
  assert.equal((await post("/v1/secrets/db_password/compare", { data: b64("x"), extra: 1 })).statusCode, 400);

  for (const body of [same.body, missing.body, empty.body, ...logged]) {
    assert.doesNotMatch(body, /hunter2/);
    assert.ok(!body.includes(b64("hunter2-s3cret")), "neither the answer nor the log carries the data");
  }
  await a.close();
});
