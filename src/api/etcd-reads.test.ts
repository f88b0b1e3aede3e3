// The API on the etcd store: reads are linearizable across managers by default (?stale=true reads
// the cache), and with etcd down entirely every cluster read and write answers 503 quickly with a
// clear message; everything answers again once etcd is back.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { testApi } from "../../test/harness/api.js";
import { EtcdStore } from "../store/etcd/etcd-store.js";
import { systemClock } from "../lib/clock.js";
import { etcdTestGate, startEtcd, type EtcdCluster } from "../../test/harness/etcd.js";

const { missingInCi, opts } = etcdTestGate("API-on-etcd tests");

const closers: (() => unknown)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function manager(endpoints: string[]) {
  const store = await EtcdStore.open({ endpoints, prefix: "/api-test/" });
  const app = await testApi({ store, clock: systemClock });
  closers.push(() => app.close(), () => store.close());
  return { app, store };
}

test("API on etcd: a read through one manager sees a write acknowledged by another; etcd down: 503 within seconds, then service again", opts, async () => {
  if (missingInCi) throw missingInCi;
  const etcd: EtcdCluster = await startEtcd();
  closers.push(() => etcd.stop());
  const m1 = await manager(etcd.endpoints);
  const m2 = await manager(etcd.endpoints);
  for (let i = 0; i < 5; i++) {
    const created = await m1.app.inject({ method: "POST", url: "/v1/services", payload: { name: `s${i}`, replicas: 0, command: ["node", "s.js"] } });
    assert.equal(created.statusCode, 201, created.body);
    const read = await m2.app.inject({ method: "GET", url: `/v1/services/s${i}` });
    assert.equal(read.statusCode, 200, `manager 2 answered ${read.statusCode} right after manager 1 acknowledged s${i}: ${read.body}`);
  }
  // ?stale=true is the API's own parameter: accepted on any GET, even one with a strict query schema.
  assert.equal((await m2.app.inject({ method: "GET", url: "/v1/tasks?stale=true" })).statusCode, 200);

  await etcd.members[0]!.kill();
  const started = Date.now();
  const read = await m2.app.inject({ method: "GET", url: "/v1/services" });
  const write = await m1.app.inject({ method: "POST", url: "/v1/services", payload: { name: "later", replicas: 0, command: ["node", "s.js"] } });
  const took = Date.now() - started;
  for (const r of [read, write]) {
    assert.equal(r.statusCode, 503, r.body);
    assert.equal(r.json().code, "UNAVAILABLE");
  }
  assert.match(read.json().message, /store is unavailable: etcd did not answer/);
  assert.ok(took < 12_000, `answers took ${took} ms`);
  // The cache still answers when asked for it, and so does the process's own info.
  assert.equal((await m2.app.inject({ method: "GET", url: "/v1/services?stale=true" })).json().length, 5);
  assert.equal((await m2.app.inject({ method: "GET", url: "/v1/info" })).statusCode, 200);

  await etcd.members[0]!.start();
  const deadline = Date.now() + 20_000;
  let status = 0;
  while (Date.now() < deadline && status !== 201) {
    status = (await m1.app.inject({ method: "POST", url: "/v1/services", payload: { name: "later", replicas: 0, command: ["node", "s.js"] } })).statusCode;
    if (status !== 201) await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(status, 201, "writes resume once etcd is back");
  // Manager 2's connection is redialled on gRPC's backoff: a client retries a 503.
  let list = await m2.app.inject({ method: "GET", url: "/v1/services" });
  for (let i = 0; i < 20 && list.statusCode === 503; i++) {
    await new Promise((r) => setTimeout(r, 250));
    list = await m2.app.inject({ method: "GET", url: "/v1/services" });
  }
  assert.equal(list.statusCode, 200, list.body);
  assert.equal(list.json().length, 6);
});

test("API on etcd: a manager never serves a read older than a write it acknowledged itself, even from its cache (?stale=true) while another manager writes", opts, async () => {
  if (missingInCi) throw missingInCi;
  const etcd: EtcdCluster = await startEtcd();
  closers.push(() => etcd.stop());
  const m1 = await manager(etcd.endpoints);
  const m2 = await manager(etcd.endpoints);
  // Manager 1 keeps etcd's revision moving, so manager 2's cache is often behind etcd when it writes.
  let stop = false;
  const other = (async () => {
    for (let i = 0; !stop; i++) await m1.app.inject({ method: "POST", url: "/v1/services", payload: { name: `other-${i}`, replicas: 0, command: ["node", "s.js"] } });
  })();
  try {
    for (let i = 0; i < 40; i++) {
      const body = { name: `own-${i}`, replicas: 0, command: ["node", "s.js"] };
      const created = await m2.app.inject({ method: "POST", url: "/v1/services", payload: body });
      assert.equal(created.statusCode, 201, created.body);
      const read = await m2.app.inject({ method: "GET", url: `/v1/services/own-${i}?stale=true` });
      assert.equal(read.statusCode, 200, `own-${i}: acknowledged, then not in the same manager's cache: ${read.body}`);
      const updated = await m2.app.inject({ method: "POST", url: `/v1/services/own-${i}/update`, payload: { version: created.json().version, spec: { ...body, env: ["V=2"] } } });
      assert.equal(updated.statusCode, 200, updated.body);
      const again = await m2.app.inject({ method: "GET", url: `/v1/services/own-${i}?stale=true` });
      assert.equal(again.json().version, updated.json().version, `own-${i}: the cache served a version older than the update it acknowledged`);
    }
  } finally {
    stop = true;
    await other;
  }
});

test("API on etcd: a write through one manager decides on state at least as new as every write acknowledged before it by another (a name deleted and created again is not answered from the old id)", opts, async () => {
  if (missingInCi) throw missingInCi;
  const etcd: EtcdCluster = await startEtcd();
  closers.push(() => etcd.stop());
  const m1 = await manager(etcd.endpoints);
  const m2 = await manager(etcd.endpoints);
  const body = (i: number) => ({ name: `n${i}`, replicas: 0, command: ["node", "s.js"] });
  for (let i = 0; i < 30; i++) {
    const first = await m1.app.inject({ method: "POST", url: "/v1/services", payload: body(i) });
    assert.equal(first.statusCode, 201, first.body);
    // Manager 2 learns the first service and its version, as a client reading through it would.
    const read = await m2.app.inject({ method: "GET", url: `/v1/services/n${i}` });
    assert.equal(read.json().id, first.json().id);
    // Through manager 1: the name is deleted and created again (another id, a newer version).
    assert.equal((await m1.app.inject({ method: "DELETE", url: `/v1/services/n${i}` })).statusCode, 200);
    const second = await m1.app.inject({ method: "POST", url: "/v1/services", payload: body(i) });
    assert.equal(second.statusCode, 201, second.body);
    // An update by name at the old version is a version conflict with the new service, not "not found".
    const update = await m2.app.inject({ method: "POST", url: `/v1/services/n${i}/update`, payload: { version: read.json().version, spec: { ...body(i), env: ["V=2"] } } });
    assert.equal(update.statusCode, 409, `n${i}: ${update.body}`);
    assert.equal(update.json().code, "VERSION_CONFLICT");
    // Deleted through manager 1, the name is free at once through manager 2.
    assert.equal((await m1.app.inject({ method: "DELETE", url: `/v1/services/n${i}` })).statusCode, 200);
    const again = await m2.app.inject({ method: "POST", url: "/v1/services", payload: body(i) });
    assert.equal(again.statusCode, 201, `n${i}: ${again.body}`);
  }
});
