// What only the etcd backend has to show: several managers (EtcdStore instances) on one etcd,
// durability across kill -9 of the member, and the per-transaction operation limit.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { Etcd3 } from "etcd3";
import { EtcdStore } from "./etcd-store.js";
import { BatonError } from "../../lib/errors.js";
import { aService } from "../../../test/harness/builders.js";
import { etcdTestGate, startEtcd, type EtcdCluster } from "../../../test/harness/etcd.js";

const { missingInCi, opts } = etcdTestGate("etcd store tests");

let shared: Promise<EtcdCluster> | undefined;
let prefixes = 0;
const opened: EtcdStore[] = [];
after(async () => {
  for (const s of opened) s.close();
  await (await shared)?.stop();
});

/** Two managers' stores on one etcd, on a fresh key prefix. */
async function twoManagers(): Promise<[EtcdStore, EtcdStore]> {
  if (missingInCi) throw missingInCi;
  const cluster = await (shared ??= startEtcd());
  const prefix = `/managers-${++prefixes}/`;
  const a = await EtcdStore.open({ endpoints: cluster.endpoints, prefix });
  const b = await EtcdStore.open({ endpoints: cluster.endpoints, prefix });
  opened.push(a, b);
  return [a, b];
}

const newService = (name: string, id?: string) => {
  const s = aService({ name });
  return { id: id ?? s.id, spec: s.spec, specVersion: s.specVersion };
};
const isCode = (code: string) => (e: unknown) => e instanceof BatonError && e.code === code;

test("etcd: a create through one manager is in the other's view once its watch delivered it", opts, async () => {
  const [a, b] = await twoManagers();
  const s = await a.update((tx) => tx.create("services", newService("web")));
  await b.waitForRevision(a.revision());
  assert.equal(b.revision(), a.revision());
  assert.deepEqual(b.view((tx) => tx.serviceByName("web")), s);
});

test("etcd: concurrent updates of one object through two managers: exactly one wins, the other gets VERSION_CONFLICT", opts, async () => {
  const [a, b] = await twoManagers();
  const s = await a.update((tx) => tx.create("services", newService("web")));
  await b.waitForRevision(a.revision());
  const results = await Promise.allSettled(
    [a, b].map((store, i) => store.update((tx) => tx.update("services", { ...tx.get("services", s.id)!, specVersion: 10 + i }))),
  );
  const won = results.filter((r) => r.status === "fulfilled");
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  assert.equal(won.length, 1, "one write wins");
  assert.equal(lost.length, 1, "one write loses");
  assert.ok(isCode("VERSION_CONFLICT")(lost[0]!.reason), String(lost[0]!.reason));
  const winner = (won[0] as PromiseFulfilledResult<{ specVersion: number }>).value;
  await Promise.all([a.waitForRevision(b.revision()), b.waitForRevision(a.revision())]);
  for (const store of [a, b]) assert.equal(store.view((tx) => tx.get("services", s.id))?.specVersion, winner.specVersion);
});

test("etcd: one service name created through two managers at once: one NAME_IN_USE", opts, async () => {
  const [a, b] = await twoManagers();
  // Each manager checks its own cache (as the API does) and finds the name free.
  const create = (store: EtcdStore, id: string) =>
    store.update((tx) => {
      if (tx.serviceByName("web")) throw new BatonError("NAME_IN_USE", "taken (seen in the cache)");
      return tx.create("services", newService("web", id));
    });
  const results = await Promise.allSettled([create(a, "svc-a"), create(b, "svc-b")]);
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  assert.equal(lost.length, 1, "exactly one create fails");
  assert.ok(isCode("NAME_IN_USE")(lost[0]!.reason), String(lost[0]!.reason));
  await Promise.all([a.waitForRevision(b.revision()), b.waitForRevision(a.revision())]);
  assert.equal(a.view((tx) => tx.list("services")).length, 1);
  // A deleted service's name is free again; a rename moves the name.
  const s = a.view((tx) => tx.serviceByName("web"))!;
  await a.update((tx) => tx.update("services", { ...s, spec: { ...s.spec, name: "web2" } }));
  await b.update((tx) => tx.create("services", newService("web")));
  await assert.rejects(a.update((tx) => tx.create("services", newService("web2"))), isCode("NAME_IN_USE"));
  await b.waitForRevision(a.revision());
  await b.update((tx) => tx.delete("services", tx.serviceByName("web2")!.id));
  await a.waitForRevision(b.revision());
  await a.update((tx) => tx.create("services", newService("web2")));
});

test("etcd: a secret name created through two managers at once: one NAME_IN_USE (every named kind has name keys)", opts, async () => {
  const [a, b] = await twoManagers();
  const create = (store: EtcdStore, id: string) => store.update((tx) => tx.create("secrets", { id, name: "db-password", labels: {}, sealed: "x", size: 1 }));
  const results = await Promise.allSettled([create(a, "sec-a"), create(b, "sec-b")]);
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  assert.equal(lost.length, 1, "exactly one create fails");
  assert.ok(isCode("NAME_IN_USE")(lost[0]!.reason) && /secret name "db-password"/.test(String(lost[0]!.reason)), String(lost[0]!.reason));
  // A service may have the same name as a secret.
  await a.update((tx) => tx.create("services", newService("db-password")));
});

test("etcd: a transaction over the operation limit fails with a clear error and applies nothing", opts, async () => {
  const [a] = await twoManagers();
  const r0 = a.revision();
  // A service is two operations (the object and its name key): 65 services are 130 > 128.
  await assert.rejects(
    a.update((tx) => {
      for (let i = 0; i < 65; i++) tx.create("services", newService(`s${i}`));
    }),
    (e: unknown) => isCode("PAYLOAD_TOO_LARGE")(e) && /130 operations is over etcd's limit of 128/.test((e as Error).message),
  );
  assert.equal(a.revision(), r0);
  assert.equal(a.view((tx) => tx.list("services")).length, 0);
  // 64 services (128 operations) fit.
  await a.update((tx) => {
    for (let i = 0; i < 64; i++) tx.create("services", newService(`s${i}`));
  });
  assert.equal(a.view((tx) => tx.list("services")).length, 64);
});

test("etcd: a store that believes the limit is higher than the cluster's gets the same clear error", opts, async () => {
  if (missingInCi) throw missingInCi;
  const cluster = await (shared ??= startEtcd());
  const store = await EtcdStore.open({ endpoints: cluster.endpoints, prefix: `/limit-${++prefixes}/`, maxTxnOps: 1000 });
  opened.push(store);
  await assert.rejects(
    store.update((tx) => {
      for (let i = 0; i < 100; i++) tx.create("services", newService(`s${i}`));
    }),
    (e: unknown) => isCode("PAYLOAD_TOO_LARGE")(e) && /etcd cluster refused it/.test((e as Error).message),
  );
  assert.equal(store.view((tx) => tx.list("services")).length, 0);
});

test("etcd: acknowledged writes survive kill -9 and restart of the (single) member", opts, async () => {
  if (missingInCi) throw missingInCi;
  // Its own member: the data dir is on disk and etcd fsyncs its WAL before acknowledging.
  const cluster = await startEtcd();
  try {
    let store = await EtcdStore.open({ endpoints: cluster.endpoints });
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await store.update((tx) => tx.create("services", newService(`keep${i}`)))).id);
    const last = await store.update((tx) => tx.update("services", { ...tx.get("services", ids[0]!)!, specVersion: 7 }));
    const revision = store.revision();
    store.close();
    await cluster.members[0]!.kill();
    await cluster.members[0]!.start();
    store = await EtcdStore.open({ endpoints: cluster.endpoints });
    try {
      assert.ok(store.revision() >= revision, `revision ${store.revision()} after restart, ${revision} acknowledged`);
      assert.equal(store.view((tx) => tx.list("services")).length, 20);
      assert.deepEqual(store.view((tx) => tx.get("services", ids[0]!)), last);
      // Versions carry on: a stale update still conflicts, a fresh one works.
      await store.update((tx) => tx.update("services", { ...last, specVersion: 8 }));
      await assert.rejects(store.update((tx) => tx.update("services", { ...last, specVersion: 9 })), isCode("VERSION_CONFLICT"));
    } finally {
      store.close();
    }
  } finally {
    await cluster.stop();
  }
});

test("etcd: after sync(), a manager reads every write another manager acknowledged before it (linearizable read), even with foreign keys moving etcd's revision", opts, async () => {
  const [a, b] = await twoManagers();
  const foreign = new Etcd3({ hosts: (await shared)!.endpoints });
  for (let i = 0; i < 5; i++) {
    const s = await a.update((tx) => tx.create("services", newService(`lin-${i}`)));
    // Keys outside the prefix (another tenant, the leader key) advance etcd's revision too.
    await foreign.put(`/foreign/${i}`).value("x").exec();
    await b.sync();
    assert.deepEqual(b.view((tx) => tx.get("services", s.id)), s, `write ${i} not visible after sync`);
  }
  await b.sync();
  foreign.close();
});

test("etcd: a write fenced on a leader key fails with NOT_LEADER once the key is another term's, and writes nothing", opts, async () => {
  const [a] = await twoManagers();
  const fenceKey = `/fence-${prefixes}/leader`;
  const created = await a.update((tx) => tx.create("services", newService("fenced")));
  const own = await a.update((tx) => tx.update("services", { ...tx.get("services", created.id)!, specVersion: 2 }), { fence: { key: fenceKey, revision: 0 } });
  assert.equal(own.specVersion, 2, "revision 0 = the key is absent: the compare holds");
  await a.update((tx) => tx.update("services", { ...tx.get("services", created.id)!, specVersion: 3 })).catch(() => undefined);
  await assert.rejects(
    a.update((tx) => tx.update("services", { ...tx.get("services", created.id)!, specVersion: 4 }), { fence: { key: fenceKey, revision: 12345 } }),
    (e: unknown) => isCode("NOT_LEADER")(e) && /is gone/.test((e as Error).message),
  );
  await a.sync();
  assert.equal(a.view((tx) => tx.get("services", created.id))!.specVersion, 3);
});
