import { test } from "node:test";
import assert from "node:assert/strict";
import { managerConfigFor } from "./manager-material.js";
import { BatonError } from "../lib/errors.js";

const node = { advertiseAddr: "10.0.0.2", listenAddr: "0.0.0.0:4242", port: 4242 };

test("a manager joining a managed etcd: ha, the members to join through, the cluster's heartbeat; itself first", () => {
  const cfg = managerConfigFor(
    { caKeyPem: "k", managers: ["10.0.0.1:4242", "10.0.0.2:4242"], managedEtcd: { caCertPem: "c", caKeyPem: "k2", members: ["https://10.0.0.1:2379"] }, heartbeatPeriodMs: 400, heartbeatGraceMs: 1600 },
    node,
  );
  assert.deepEqual(cfg, {
    role: "manager",
    advertiseAddr: "10.0.0.2",
    listenAddr: "0.0.0.0:4242",
    managers: ["10.0.0.2:4242", "10.0.0.1:4242"],
    heartbeatPeriodMs: 400,
    heartbeatGraceMs: 1600,
    ha: true,
    etcdJoin: ["https://10.0.0.1:2379"],
  });
});

test("a manager joining a user's TLS etcd: the store URL and the saved PEM files; no heartbeat when the cluster uses the defaults", () => {
  const files = { ca: "/d/etcd-tls/ca.crt", cert: "/d/etcd-tls/client.crt", key: "/d/etcd-tls/client.key" };
  const cfg = managerConfigFor({ caKeyPem: "k", managers: ["10.0.0.1:4242"], store: "etcd://10.0.0.1:2379", etcdTls: { caCertPem: "c" } }, { ...node, etcdTlsFiles: files });
  assert.deepEqual(cfg, { role: "manager", advertiseAddr: "10.0.0.2", listenAddr: "0.0.0.0:4242", managers: ["10.0.0.2:4242", "10.0.0.1:4242"], store: "etcd://10.0.0.1:2379", etcdTls: files });
});

test("material with neither an etcd store nor a managed etcd is refused, naming the field", () => {
  assert.throws(
    () => managerConfigFor({ caKeyPem: "k", managers: [] }, node),
    (e: unknown) => e instanceof BatonError && e.code === "UNAVAILABLE" && e.fields[0]?.path.join(".") === "manager.store",
  );
});
