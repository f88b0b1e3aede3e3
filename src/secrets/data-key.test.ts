import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openLocalDataKey, DATA_KEY_FILE } from "./data-key.js";
import { BatonError } from "../lib/errors.js";

test("baton up's data key: made once (0600), the same after a restart; a sealed secret does not hold its value and opens only under its own id", async () => {
  const dir = mkdtempSync(join(tmpdir(), "baton-key-"));
  try {
    const box = await openLocalDataKey(dir);
    assert.equal(statSync(join(dir, DATA_KEY_FILE)).mode & 0o777, 0o600);
    const sealed = box.seal("id1", Buffer.from("swordfish"));
    assert.ok(!sealed.includes("swordfish") && !sealed.includes(Buffer.from("swordfish").toString("base64")));
    const again = await openLocalDataKey(dir);
    assert.equal(again.open("id1", sealed).toString(), "swordfish");
    // Copied onto another secret's record, the ciphertext does not open (the id is authenticated).
    assert.throws(() => again.open("id2", sealed), (e: unknown) => e instanceof BatonError && !e.message.includes("swordfish"));
    // A key file that is not a key is refused, not used.
    const bad = mkdtempSync(join(tmpdir(), "baton-key-"));
    (await import("node:fs")).writeFileSync(join(bad, DATA_KEY_FILE), "short\n");
    await assert.rejects(openLocalDataKey(bad), /not a secrets data key/);
    rmSync(bad, { recursive: true, force: true });
    assert.notEqual(readFileSync(join(dir, DATA_KEY_FILE), "utf8").trim().length, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("baton init on a baton up data dir keeps its data key (sealed into the cluster record under the CA key), so earlier secrets still open", async () => {
  const { openClusterDataKey } = await import("./data-key.js");
  const { createMemoryStore } = await import("../store/memory/memory-store.js");
  const dir = mkdtempSync(join(tmpdir(), "baton-key-"));
  try {
    const sealed = (await openLocalDataKey(dir)).seal("s1", Buffer.from("before init"));
    const store = createMemoryStore();
    await store.update((tx) => tx.create("clusters", { id: "cluster", caCertPem: "", joinTokens: {} as never, revocations: { nodeIds: [], serials: [] } }));
    const box = await openClusterDataKey(store, "ca key pem", dir);
    assert.equal(box.open("s1", sealed).toString(), "before init");
    const record = store.view((tx) => tx.get("clusters", "cluster"))!;
    assert.ok(record.secretsKey && !record.secretsKey.includes(readFileSync(join(dir, DATA_KEY_FILE), "utf8").trim()), "the record holds the key sealed, not as it is");
    // Another manager with the CA key (and no local key file) opens the same key from the record.
    const otherDir = mkdtempSync(join(tmpdir(), "baton-key-"));
    try {
      const other = await openClusterDataKey(store, "ca key pem", otherDir);
      assert.equal(other.open("s1", sealed).toString(), "before init");
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
