// Writes that grow with the number of objects, on a store that limits a transaction's size as
// etcd does (--max-txn-ops): the memory store emulating a small limit, and a real etcd with its
// default of 128. The manager's real controllers and dispatcher; agents that run nothing.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { Manager } from "./manager.js";
import { createMemoryStore } from "../store/memory/memory-store.js";
import { EtcdStore, ETCD_DEFAULT_MAX_TXN_OPS } from "../store/etcd/etcd-store.js";
import { createLogger, silentLogger } from "../lib/log.js";
import { BatonError } from "../lib/errors.js";
import type { Task } from "../model/objects.js";
import type { Store } from "../store/store.js";
import { FakeClock } from "../../test/harness/fake-clock.js";
import { aService } from "../../test/harness/builders.js";
import { etcdTestGate, startEtcd, type EtcdCluster } from "../../test/harness/etcd.js";

/** Polls (real time: etcd's writes are real I/O) until `cond` holds. */
async function until(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Create with `replicas`, run them, scale to 0, remove; a node leaving with many tasks. */
async function scenario(store: Store, clock: FakeClock, replicas: number): Promise<void> {
  const manager = new Manager({ store, clock, log: process.env.LOG ? createLogger({ level: "warn" }) : silentLogger() });
  manager.start();
  try {
    const nodes = ["n1", "n2"];
    const seq = new Map<string, number>();
    for (const n of nodes) {
      const session = manager.dispatcher.localSession();
      await session.register({ nodeId: n, hostname: n, role: "worker", resources: { cpus: 64, memoryBytes: 1024 ** 4 }, drivers: ["process"], platform: { os: "linux", arch: "x64" }, agentVersion: "test" });
    }
    const tasks = (id: string): Task[] => store.view((tx) => tx.tasksOfService(id));
    /** Every task of the service in `state`, reported by its node as an agent does (one batch per node). */
    const report = async (id: string, state: "running" | "shutdown"): Promise<void> => {
      const byNode = new Map<string, Task[]>();
      for (const t of tasks(id)) if (t.nodeId) byNode.set(t.nodeId, [...(byNode.get(t.nodeId) ?? []), t]);
      await Promise.all(
        [...byNode].map(([nodeId, ts]) =>
          manager.dispatcher.reportStatus(
            ts.map((t) => ({ taskId: t.id, state, message: state, timestamp: clock.now(), seq: seq.set(t.id, (seq.get(t.id) ?? 0) + 1).get(t.id)! })),
            nodeId,
          ),
        ),
      );
    };

    const svc = aService({ name: "big", replicas });
    await store.update((tx) => tx.create("services", { id: svc.id, spec: svc.spec, specVersion: 1 }));
    await until(`${replicas} tasks assigned`, () => tasks(svc.id).filter((t) => t.status.state === "assigned").length === replicas);
    assert.deepEqual(new Set(tasks(svc.id).map((t) => t.slot)).size, replicas, "one task per slot");
    await report(svc.id, "running");
    assert.equal(tasks(svc.id).filter((t) => t.status.state === "running").length, replicas);

    // Scale to 0: every task told to stop, then (as its agent stopped it) kept as history.
    await store.update((tx) => {
      const s = tx.get("services", svc.id)!;
      tx.update("services", { ...s, spec: { ...s.spec, mode: { kind: "replicated", replicas: 0 } } });
    });
    await until("every task told to stop", () => tasks(svc.id).every((t) => t.desiredState === "shutdown"));
    await report(svc.id, "shutdown");
    // Removing the service deletes its ended tasks.
    await store.update((tx) => tx.delete("services", svc.id));
    await until("the removed service's tasks deleted", () => tasks(svc.id).length === 0);

    // A node leaving with more tasks than one transaction holds: all orphaned, the node down.
    const again = aService({ name: "again", replicas });
    await store.update((tx) => tx.create("services", { id: again.id, spec: again.spec, specVersion: 1 }));
    await until("placed again", () => tasks(again.id).filter((t) => t.status.state === "assigned").length === replicas);
    await report(again.id, "running");
    const onN1 = tasks(again.id).filter((t) => t.nodeId === "n1").map((t) => t.id);
    assert.ok(onN1.length > (store.maxOpsPerTxn ?? 0) / 2, `n1 holds ${onN1.length} tasks`);
    await manager.dispatcher.leave("n1");
    assert.equal(store.view((tx) => tx.get("nodes", "n1"))?.status.state, "down");
    assert.ok(onN1.every((id) => store.view((tx) => tx.get("tasks", id))?.status.state === "orphaned"), "every task of n1 orphaned");
    // Replaced on n2, one task per slot again.
    await until("n1's slots replaced on n2", () => tasks(again.id).filter((t) => t.desiredState === "running" && t.nodeId === "n2" && t.status.state !== "orphaned").length === replicas);
  } finally {
    manager.stop();
  }
}

test("memory store with a limit of 20 operations per transaction: 60 replicas created, run, scaled to 0, removed; a node with 30 tasks leaves", async () => {
  const clock = new FakeClock();
  const store = createMemoryStore({ clock, maxTxnOps: 20 });
  // The emulated limit is real: one transaction over it fails and writes nothing.
  const svc = aService({ name: "too-many" });
  await assert.rejects(
    store.update((tx) => {
      for (let i = 0; i < 11; i++) tx.create("services", { id: `${svc.id}-${i}`, spec: { ...svc.spec, name: `s${i}` }, specVersion: 1 });
    }),
    (e: unknown) => e instanceof BatonError && e.code === "PAYLOAD_TOO_LARGE" && /22 operations is over etcd's limit of 20/.test(e.message),
  );
  assert.equal(store.revision(), 0);
  await scenario(store, clock, 60);
  store.close();
});

const { missingInCi, opts } = etcdTestGate("large plans on etcd");
let cluster: EtcdCluster | undefined;
after(async () => {
  await cluster?.stop();
});

test("etcd with its default --max-txn-ops (128): 300 replicas created, run, scaled to 0, removed; a node with ~150 tasks leaves", opts, async () => {
  if (missingInCi) throw missingInCi;
  cluster = await startEtcd();
  const clock = new FakeClock();
  const store = await EtcdStore.open({ endpoints: cluster.endpoints, clock });
  assert.equal(store.maxOpsPerTxn, ETCD_DEFAULT_MAX_TXN_OPS - 1);
  try {
    await scenario(store, clock, 300);
  } finally {
    store.close();
  }
});
