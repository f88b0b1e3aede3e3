import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import * as tls from "node:tls";
import { FakeClock } from "../../test/harness/fake-clock.js";
import { isBatonError } from "../lib/errors.js";
import { ClusterCa, defaultNodeCertValidityMs } from "./ca.js";
import { createNodeKeyAndCsr, type NodeCredentials } from "./node-cert.js";
import { RevocationList } from "./revocation.js";
import type { NodeRole } from "./role.js";
import { clientTlsOptions, serverTlsOptions, verifyTlsPeer } from "./tls.js";

// OpenSSL checks validity on the wall clock, so the cluster's clock starts at the real now;
// the verification helper reads this FakeClock, which the expiry test moves.
const clock = new FakeClock(Date.now());
const revocations = new RevocationList();
let ca: ClusterCa;
let manager: NodeCredentials;
let server: tls.Server;
let port: number;
const refusals: string[] = [];

async function credentials(issuer: ClusterCa, nodeId: string, role: NodeRole, validityMs?: number): Promise<NodeCredentials> {
  const { keyPem, csrPem } = await createNodeKeyAndCsr(nodeId);
  const { certPem } = await issuer.signNodeCsr({ csrPem, role, addresses: ["127.0.0.1"], validityMs });
  return { caCertPem: issuer.certPem, certPem, keyPem };
}

before(async () => {
  ca = await ClusterCa.create({ clock });
  manager = await credentials(ca, "m1", "manager");
  server = tls.createServer(serverTlsOptions(manager), (socket) => {
    try {
      const peer = verifyTlsPeer(socket, { caCertPem: ca.certPem, clock, revocations });
      socket.end(`hello ${peer.role} ${peer.nodeId}`);
    } catch (err) {
      refusals.push(isBatonError(err) ? String(err.fields[0]?.problem) : String(err));
    }
  });
  // A handshake OpenSSL refuses never reaches the handler; the socket just errors.
  server.on("tlsClientError", () => refusals.push("handshake"));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
});

after(() => new Promise<void>((r) => server.close(() => r())));

/** Connects, reads until the server closes; what the client received, or the error it got. */
function talk(options: tls.ConnectionOptions): Promise<{ data: string; error?: Error }> {
  return new Promise((resolve) => {
    let data = "";
    let error: Error | undefined;
    const socket = tls.connect({ host: "127.0.0.1", port, ...options });
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => (data += d));
    socket.on("error", (e) => (error = e));
    socket.on("close", () => resolve({ data, error }));
  });
}

const verifierDeps = () => ({ caCertPem: ca.certPem, clock, revocations });

test("a worker with a certificate of the cluster talks to the manager over mutual TLS", async () => {
  const worker = await credentials(ca, "w1", "worker");
  const res = await talk(clientTlsOptions(worker, verifierDeps(), { requireRole: "manager" }));
  assert.equal(res.error, undefined);
  assert.equal(res.data, "hello worker w1");
});

test("a client with a certificate of another CA is refused in the handshake", async () => {
  const other = await ClusterCa.create({ clock });
  const stranger = await credentials(other, "x1", "worker");
  // It trusts our CA (to get that far), but its own certificate is another cluster's.
  const before = refusals.length;
  const res = await talk(clientTlsOptions({ ...stranger, caCertPem: ca.certPem }, verifierDeps()));
  assert.equal(res.data, "");
  assert.deepEqual(refusals.slice(before), ["handshake"]);
});

test("a client with no certificate is refused", async () => {
  const before = refusals.length;
  const res = await talk({ ca: [ca.certPem], checkServerIdentity: () => undefined });
  assert.equal(res.data, "");
  assert.deepEqual(refusals.slice(before), ["handshake"]);
});

test("a revoked node is refused by the verification callback after a valid handshake", async () => {
  const removed = await credentials(ca, "w-removed", "worker");
  assert.equal((await talk(clientTlsOptions(removed, verifierDeps()))).data, "hello worker w-removed");
  revocations.revokeNode("w-removed");
  const before = refusals.length;
  const res = await talk(clientTlsOptions(removed, verifierDeps()));
  assert.equal(res.data, "");
  assert.deepEqual(refusals.slice(before), ["revoked"]);
});

test("a certificate past notAfter on the cluster clock is refused by the verification helper", async () => {
  const soon = await credentials(ca, "w-short", "worker", 60 * 60 * 1000);
  assert.equal((await talk(clientTlsOptions(soon, verifierDeps()))).data, "hello worker w-short");
  clock.jump(2 * 60 * 60 * 1000);
  try {
    const before = refusals.length;
    const res = await talk(clientTlsOptions(soon, { ...verifierDeps(), clock: new FakeClock(Date.now()) }));
    assert.equal(res.data, "");
    assert.deepEqual(refusals.slice(before), ["expired"]);
  } finally {
    clock.jump(-2 * 60 * 60 * 1000);
  }
});

test("a certificate issued with a past validity is refused in the handshake", async () => {
  const past = new FakeClock(Date.now() - 2 * defaultNodeCertValidityMs);
  const stale = await credentials(await ClusterCa.fromPem(ca.certPem, await ca.exportKeyPem(), { clock: past }), "w-old", "worker");
  const before = refusals.length;
  const res = await talk(clientTlsOptions(stale, verifierDeps()));
  assert.equal(res.data, "");
  assert.deepEqual(refusals.slice(before), ["handshake"]);
});

test("a worker refuses a server whose certificate is not a manager's", async () => {
  const worker = await credentials(ca, "w2", "worker");
  const impostor = tls.createServer(serverTlsOptions(await credentials(ca, "w3", "worker")), (s) => s.end("hello"));
  await new Promise<void>((r) => impostor.listen(0, "127.0.0.1", r));
  try {
    const res = await new Promise<{ error?: Error }>((resolve) => {
      const s = tls.connect({ host: "127.0.0.1", port: (impostor.address() as AddressInfo).port, ...clientTlsOptions(worker, verifierDeps(), { requireRole: "manager" }) });
      s.on("error", (error) => resolve({ error }));
      s.on("secureConnect", () => resolve({}));
    });
    assert.match(res.error?.message ?? "", /expected a manager/);
  } finally {
    await new Promise<void>((r) => impostor.close(() => r()));
  }
});
