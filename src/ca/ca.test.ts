import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { FakeClock } from "../../test/harness/fake-clock.js";
import { ClusterCa, caKeyFile, certBackdateMs, defaultNodeCertValidityMs } from "./ca.js";
import { caFingerprint } from "./fingerprint.js";
import { createNodeKeyAndCsr, loadNodeCredentials, needsRenewal, readNodeCert, renewAt, saveNodeCredentials } from "./node-cert.js";
import { RevocationList } from "./revocation.js";
import { verifyPeer } from "./verify.js";

const DAY = 24 * 60 * 60 * 1000;
const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "baton-ca-"));
  dirs.push(d);
  return d;
}

async function issue(ca: ClusterCa, nodeId: string, role: "worker" | "manager", addresses?: string[]) {
  const { keyPem, csrPem } = await createNodeKeyAndCsr(nodeId);
  return { keyPem, ...(await ca.signNodeCsr({ csrPem, role, addresses })) };
}

test("the CA is self-signed, a CA with pathLen 0, and its fingerprint is the SHA-256 of its DER in base32", async () => {
  const clock = new FakeClock();
  const ca = await ClusterCa.create({ clock });
  const cert = new X509Certificate(ca.certPem);
  assert.equal(cert.ca, true);
  assert.ok(cert.verify(cert.publicKey));
  assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
  assert.match(ca.fingerprint, /^[a-z2-7]{52}$/);
  assert.equal(ca.fingerprint, caFingerprint(cert.raw));
});

test("a saved CA loads back identical, with its key file 0600", async () => {
  const clock = new FakeClock();
  const dir = await tempDir();
  const ca = await ClusterCa.loadOrCreate(dir, { clock });
  assert.equal((await stat(join(dir, caKeyFile))).mode & 0o777, 0o600);
  const again = await ClusterCa.loadOrCreate(dir, { clock });
  assert.equal(again.fingerprint, ca.fingerprint);
  // The reloaded key still signs certificates that chain to the same root.
  const node = await issue(again, "n1", "worker");
  assert.equal(verifyPeer(node.certPem, { caCertPem: ca.certPem, clock, revocations: new RevocationList() }).nodeId, "n1");
});

test("a CA key that does not match the certificate is refused", async () => {
  const clock = new FakeClock();
  const a = await ClusterCa.create({ clock });
  const dirA = await tempDir();
  const dirB = await tempDir();
  await a.save(dirA);
  await (await ClusterCa.create({ clock })).save(dirB);
  const keyB = await readFile(join(dirB, caKeyFile), "utf8");
  await assert.rejects(ClusterCa.fromPem(a.certPem, keyB, { clock }), { code: "VALIDATION_FAILED" });
});

test("a node certificate names the node, its role and addresses, and serves both TLS ends for 90 days", async () => {
  const clock = new FakeClock();
  const ca = await ClusterCa.create({ clock });
  const node = await issue(ca, "abc123", "manager", ["10.0.0.1", "node1.example"]);
  const info = readNodeCert(node.certPem);
  assert.equal(info.nodeId, "abc123");
  assert.equal(info.role, "manager");
  assert.deepEqual(info.addresses, ["10.0.0.1", "node1.example"]);
  assert.equal(info.notAfter, clock.now() + defaultNodeCertValidityMs);
  assert.equal(info.notBefore, clock.now() - certBackdateMs);
  const cert = new X509Certificate(node.certPem);
  assert.equal(cert.ca, false);
  assert.deepEqual(cert.keyUsage?.sort(), ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
  assert.match(cert.subjectAltName ?? "", /URI:baton:\/\/node\/abc123/);
  assert.match(cert.subjectAltName ?? "", /IP Address:10\.0\.0\.1/);
  assert.match(cert.subjectAltName ?? "", /DNS:node1\.example/);
  assert.ok(cert.checkIssued(new X509Certificate(ca.certPem)));
});

test("a CSR that names no node, or another node than expected, is refused", async () => {
  const clock = new FakeClock();
  const ca = await ClusterCa.create({ clock });
  const { csrPem } = await createNodeKeyAndCsr("n1");
  await assert.rejects(ca.signNodeCsr({ csrPem, role: "worker", expectNodeId: "n2" }), { code: "VALIDATION_FAILED" });
  await assert.rejects(ca.signNodeCsr({ csrPem: "garbage", role: "worker" }), { code: "VALIDATION_FAILED" });
  await assert.rejects(createNodeKeyAndCsr("Not An Id"), { code: "VALIDATION_FAILED" });
});

test("renewal is due once less than a third of the lifetime is left", async () => {
  const clock = new FakeClock();
  const ca = await ClusterCa.create({ clock });
  const node = await issue(ca, "n1", "worker");
  const info = readNodeCert(node.certPem);
  const lifetime = info.notAfter - info.notBefore;
  assert.equal(renewAt(node.certPem), info.notAfter - Math.floor(lifetime / 3));
  assert.equal(needsRenewal(info, clock.now()), false);
  clock.jump(59 * DAY);
  assert.equal(needsRenewal(info, clock.now()), false);
  clock.jump(2 * DAY);
  assert.equal(needsRenewal(info, clock.now()), true);
});

test("verification refuses a certificate past notAfter on the injected clock, and one not yet valid", async () => {
  const clock = new FakeClock();
  const ca = await ClusterCa.create({ clock });
  const issuedAt = clock.now();
  const node = await issue(ca, "n1", "worker");
  const deps = { caCertPem: ca.certPem, clock, revocations: new RevocationList() };
  assert.equal(verifyPeer(node.certPem, deps).role, "worker");
  clock.jump(defaultNodeCertValidityMs + 1);
  assert.throws(() => verifyPeer(node.certPem, deps), { code: "UNAUTHORIZED", fields: [{ path: ["peer"], problem: "expired" }] });
  const early = new FakeClock(issuedAt - certBackdateMs - 1);
  assert.throws(() => verifyPeer(node.certPem, { ...deps, clock: early }), { fields: [{ path: ["peer"], problem: "not-yet-valid" }] });
});

test("verification refuses another CA's certificate, a revoked node id or serial, and a wrong role", async () => {
  const clock = new FakeClock();
  const ca = await ClusterCa.create({ clock });
  const other = await ClusterCa.create({ clock });
  const revocations = new RevocationList();
  const deps = { caCertPem: ca.certPem, clock, revocations };
  const stranger = await issue(other, "n1", "manager");
  assert.throws(() => verifyPeer(stranger.certPem, deps), { fields: [{ path: ["peer"], problem: "untrusted" }] });
  // The CA's own certificate is not a node certificate, even though it "chains".
  assert.throws(() => verifyPeer(ca.certPem, deps), { fields: [{ path: ["peer"], problem: "untrusted" }] });

  const w = await issue(ca, "w1", "worker");
  assert.throws(() => verifyPeer(w.certPem, deps, { requireRole: "manager" }), { fields: [{ path: ["peer"], problem: "wrong-role" }] });

  const w2 = await issue(ca, "w2", "worker");
  revocations.revokeSerial(w2.serial.toUpperCase());
  assert.throws(() => verifyPeer(w2.certPem, deps), { fields: [{ path: ["peer"], problem: "revoked" }] });
  revocations.revokeNode("w1");
  assert.throws(() => verifyPeer(w.certPem, deps), { fields: [{ path: ["peer"], problem: "revoked" }] });
  // A renewed certificate of a removed node is refused too: revocation is by node id.
  const renewed = await issue(ca, "w1", "worker");
  assert.throws(() => verifyPeer(renewed.certPem, deps), { fields: [{ path: ["peer"], problem: "revoked" }] });
  assert.deepEqual(RevocationList.fromJSON(revocations.toJSON()).toJSON(), revocations.toJSON());
});

test("node credentials saved to a data dir load back, key 0600", async () => {
  const clock = new FakeClock();
  const ca = await ClusterCa.create({ clock });
  const node = await issue(ca, "n1", "worker");
  const dir = await tempDir();
  assert.equal(await loadNodeCredentials(dir), undefined);
  const creds = { caCertPem: ca.certPem, certPem: node.certPem, keyPem: node.keyPem };
  await saveNodeCredentials(dir, creds);
  assert.deepEqual(await loadNodeCredentials(dir), creds);
  assert.equal((await stat(join(dir, "node.key"))).mode & 0o777, 0o600);
});
