import { test } from "node:test";
import assert from "node:assert/strict";
import { parseStoreUrl } from "./store-url.js";
import { BatonError } from "../lib/errors.js";

test("--store: sqlite by default, etcd:// lists client endpoints (default port 2379)", () => {
  assert.deepEqual(parseStoreUrl(undefined), { backend: "sqlite" });
  assert.deepEqual(parseStoreUrl("sqlite"), { backend: "sqlite" });
  assert.deepEqual(parseStoreUrl("etcd://10.0.0.5:2379,10.0.0.6,[::1]:2380"), {
    backend: "etcd",
    endpoints: ["http://10.0.0.5:2379", "http://10.0.0.6:2379", "http://[::1]:2380"],
  });
});

test("--store: anything else is refused with the expected forms", () => {
  for (const v of ["postgres://x", "etcd://", "etcd://a:2379,", "etcd://a:99999", "etcd://a b"]) {
    assert.throws(() => parseStoreUrl(v), (e: unknown) => e instanceof BatonError && e.code === "VALIDATION_FAILED" && /expected sqlite or etcd:\/\//.test(e.message), v);
  }
});

test("--store with TLS to etcd: https client URLs", () => {
  assert.deepEqual(parseStoreUrl("etcd://10.0.0.5,10.0.0.6:2381", { tls: true }), {
    backend: "etcd",
    endpoints: ["https://10.0.0.5:2379", "https://10.0.0.6:2381"],
  });
});
