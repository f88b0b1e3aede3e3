import { test } from "node:test";
import assert from "node:assert/strict";
import { etcdArgs, type MemberConfig } from "./etcd-args.js";

const member: MemberConfig = {
  name: "n1",
  advertise: "10.0.0.1",
  clientPort: 2379,
  peerPort: 2380,
  initialCluster: "n1=https://10.0.0.1:2380",
  initialClusterState: "new",
  clusterToken: "baton-x",
};
const tls = { caFile: "/d/ca.crt", certFile: "/d/node.crt", keyFile: "/d/node.key" };
const flag = (args: string[], name: string): string | undefined => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};

test("a managed member listens on https only, on its address and on loopback, and demands client certificates", () => {
  const a = etcdArgs(member, "/d/etcd/data", tls);
  assert.equal(flag(a, "--listen-client-urls"), "https://10.0.0.1:2379,https://127.0.0.1:2379");
  assert.equal(flag(a, "--advertise-client-urls"), "https://10.0.0.1:2379");
  assert.equal(flag(a, "--listen-peer-urls"), "https://10.0.0.1:2380");
  assert.ok(a.includes("--client-cert-auth") && a.includes("--peer-client-cert-auth"));
  assert.equal(flag(a, "--trusted-ca-file"), "/d/ca.crt");
  assert.equal(flag(a, "--peer-trusted-ca-file"), "/d/ca.crt");
  assert.ok(!a.some((x) => x.startsWith("http://")), "no plain http URL");
});

test("a managed member is started with the raised txn limit, the failover timings, compaction and quota", () => {
  const a = etcdArgs(member, "/d/etcd/data", tls);
  assert.equal(flag(a, "--max-txn-ops"), "1024");
  assert.equal(flag(a, "--heartbeat-interval"), "50");
  assert.equal(flag(a, "--election-timeout"), "500");
  assert.ok(a.includes("--pre-vote"), "a member back from a partition does not force an election");
  assert.equal(flag(a, "--auto-compaction-mode"), "periodic");
  assert.equal(flag(a, "--quota-backend-bytes"), String(4 * 1024 ** 3));
});

test("an IPv6 advertise address is bracketed; loopback advertise is listened on once", () => {
  assert.equal(flag(etcdArgs({ ...member, advertise: "fd00::1" }, "/d", tls), "--advertise-client-urls"), "https://[fd00::1]:2379");
  assert.equal(flag(etcdArgs({ ...member, advertise: "127.0.0.1" }, "/d", tls), "--listen-client-urls"), "https://127.0.0.1:2379");
});
