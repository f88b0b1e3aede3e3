import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { createMemoryStore } from "./memory/memory-store.js";
import { openSqliteStore } from "./sqlite/sqlite-store.js";
import { schemaVersion } from "./sqlite/migrations.js";
import type { Store, StoreEvent } from "./store.js";
import { BatonError } from "../lib/errors.js";
import { aService } from "../../test/harness/builders.js";
import { settle } from "../../test/harness/fake-clock.js";

// Honour BATON_SQLITE_BINDING like openSqliteStore does (see scripts/node24-check.sh).
const sqliteOptions: Database.Options = process.env.BATON_SQLITE_BINDING ? { nativeBinding: process.env.BATON_SQLITE_BINDING } : {};

const newService = (name: string) => {
  const { id, spec, specVersion } = aService({ name });
  return { id, spec, specVersion };
};

function suite(name: string, open: (historyLimit?: number) => { store: Store; cleanup(): void }): void {
  test(`${name}: create, read, optimistic update with version conflict`, async () => {
    const { store, cleanup } = open();
    try {
      const s = await store.update((tx) => tx.create("services", newService("a")));
      assert.equal(s.version, 1);
      assert.equal(store.revision(), 1);
      const stale = { ...s };
      const s2 = await store.update((tx) => tx.update("services", { ...s, spec: { ...s.spec, labels: { x: "1" } } }));
      assert.equal(s2.version, 2);
      await assert.rejects(
        store.update((tx) => tx.update("services", stale)),
        (e: unknown) => e instanceof BatonError && e.code === "VERSION_CONFLICT",
      );
      assert.equal(store.view((tx) => tx.serviceByName("a"))?.spec.labels.x, "1");
    } finally {
      cleanup();
    }
  });

  test(`${name}: a transaction that throws changes nothing`, async () => {
    const { store, cleanup } = open();
    try {
      await assert.rejects(
        store.update((tx) => {
          tx.create("services", newService("a"));
          throw new Error("boom");
        }),
      );
      assert.equal(store.revision(), 0);
      assert.equal(store.view((tx) => tx.list("services")).length, 0);
    } finally {
      cleanup();
    }
  });

  test(`${name}: watch replays from a revision, then streams, one batch per transaction`, async () => {
    const { store, cleanup } = open();
    try {
      await store.update((tx) => tx.create("services", newService("a")));
      await store.update((tx) => {
        tx.create("services", newService("b"));
        tx.create("services", newService("c"));
      });
      const batches: StoreEvent[][] = [];
      const w = store.watch(1, (evs) => batches.push(evs));
      await settle();
      await store.update((tx) => tx.delete("services", tx.serviceByName("a")!.id));
      await settle();
      w.cancel();
      const flat = batches.flat();
      assert.deepEqual(flat.map((e) => [e.revision, e.op, (e.object as { spec: { name: string } }).spec.name]), [
        [2, "create", "b"],
        [2, "create", "c"],
        [3, "delete", "a"],
      ]);
    } finally {
      cleanup();
    }
  });

  test(`${name}: a watch older than the kept history gets COMPACTED`, async () => {
    const { store, cleanup } = open(3);
    try {
      for (let i = 0; i < 10; i++) await store.update((tx) => tx.create("services", newService(`s${i}`)));
      assert.throws(() => store.watch(1, () => undefined), (e: unknown) => e instanceof BatonError && e.code === "COMPACTED");
      store.watch(store.revision() - 1, () => undefined).cancel();
    } finally {
      cleanup();
    }
  });
}

suite("memory", (historyLimit) => ({ store: createMemoryStore({ ...(historyLimit ? { historyLimit } : {}) }), cleanup: () => undefined }));
suite("sqlite", (historyLimit) => {
  const dir = mkdtempSync(join(tmpdir(), "baton-store-"));
  const store = openSqliteStore(join(dir, "store.db"), { ...(historyLimit ? { historyLimit } : {}) });
  return { store, cleanup: () => (store.close(), rmSync(dir, { recursive: true, force: true })) };
});

test("sqlite: what was acknowledged is there after reopening, with its revision and history", async () => {
  const dir = mkdtempSync(join(tmpdir(), "baton-store-"));
  try {
    const path = join(dir, "store.db");
    let store = openSqliteStore(path);
    const s = await store.update((tx) => tx.create("services", newService("keep")));
    await store.update((tx) => tx.update("services", { ...s, specVersion: 2 }));
    store.close();
    store = openSqliteStore(path);
    assert.equal(store.revision(), 2);
    assert.equal(store.view((tx) => tx.serviceByName("keep"))?.specVersion, 2);
    const seen: StoreEvent[] = [];
    store.watch(0, (e) => seen.push(...e));
    await settle();
    assert.deepEqual(seen.map((e) => e.op), ["create", "update"]);
    store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("sqlite: runs WAL with synchronous=FULL and records its schema version", () => {
  const dir = mkdtempSync(join(tmpdir(), "baton-store-"));
  try {
    const path = join(dir, "store.db");
    openSqliteStore(path).close();
    const db = new Database(path, sqliteOptions);
    assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
    assert.equal(db.pragma("user_version", { simple: true }), schemaVersion);
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("sqlite: refuses a store written by a newer baton", () => {
  const dir = mkdtempSync(join(tmpdir(), "baton-store-"));
  try {
    const path = join(dir, "store.db");
    openSqliteStore(path).close();
    const db = new Database(path, sqliteOptions);
    db.pragma(`user_version = ${schemaVersion + 1}`);
    db.close();
    assert.throws(() => openSqliteStore(path), /newer than this baton/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
