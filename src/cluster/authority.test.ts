import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { FakeClock } from "../../test/harness/fake-clock.js";
import { createNodeKeyAndCsr, readNodeCert, needsRenewal } from "../ca/node-cert.js";
import { verifyPeer } from "../ca/verify.js";
import { aNode } from "../../test/harness/builders.js";
import { createMemoryStore } from "../store/memory/memory-store.js";
import { ClusterAuthority, caDir, certsDir } from "./authority.js";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function anAuthority() {
  const dataDir = mkdtempSync(join(tmpdir(), "baton-auth-"));
  dirs.push(dataDir);
  const clock = new FakeClock(Date.now());
  const store = createMemoryStore({ clock });
  const { authority, created } = await ClusterAuthority.open({ dataDir, store, clock, nodeId: "m1", addresses: ["10.0.0.1"] });
  return { dataDir, clock, store, authority, created };
}

const joinAs = async (a: ClusterAuthority, nodeId: string, token: string) => {
  const { csrPem, keyPem } = await createNodeKeyAndCsr(nodeId);
  return { keyPem, ...(await a.join({ token, csrPem, addresses: ["10.0.0.2"] })) };
};

test("init makes the CA (key 0600), the cluster record and the manager's own certificate; a restart resumes all of it", async () => {
  const { dataDir, clock, store, authority, created } = await anAuthority();
  assert.equal(created, true);
  assert.equal(statSync(join(caDir(dataDir), "ca.key")).mode & 0o777, 0o600);
  assert.equal(statSync(join(certsDir(dataDir), "node.key")).mode & 0o777, 0o600);
  const own = readNodeCert(authority.credentials.certPem);
  assert.deepEqual([own.nodeId, own.role, own.addresses], ["m1", "manager", ["10.0.0.1"]]);
  const token = authority.token("worker");
  const again = await ClusterAuthority.open({ dataDir, store, clock, nodeId: "m1", addresses: ["10.0.0.1"] });
  assert.equal(again.created, false);
  assert.equal(again.authority.ca.certPem, authority.ca.certPem);
  assert.equal(again.authority.token("worker"), token);
  assert.equal(again.authority.credentials.certPem, authority.credentials.certPem);
});

test("a worker token joins a worker; a rotated token, a revoked id and the id of a live node are refused", async () => {
  const { store, authority } = await anAuthority();
  const old = authority.token("worker");
  const w = await joinAs(authority, "w1", old);
  assert.equal(w.role, "worker");
  assert.equal(readNodeCert(w.certPem).nodeId, "w1");

  const fresh = await authority.rotate("worker");
  await assert.rejects(joinAs(authority, "w2", old), { code: "UNAUTHORIZED" });
  await joinAs(authority, "w2", fresh);

  await store.update((tx) => void tx.create("nodes", aNode({ id: "w3" })));
  await assert.rejects(joinAs(authority, "w3", fresh), { code: "FORBIDDEN", message: /belongs to a node that is up/ });

  const rec = store.view((tx) => tx.get("clusters", "cluster"))!;
  await store.update((tx) => void tx.update("clusters", authority.revokeNodeIn(rec, "w1")));
  await assert.rejects(joinAs(authority, "w1", fresh), { code: "FORBIDDEN", message: /was removed/ });
  assert.throws(() => verifyPeer(w.certPem, authority.verifier), { code: "UNAUTHORIZED" });
});

test("renewal keeps the node's id, role and addresses, and the manager renews its own certificate when due", async () => {
  const { dataDir, clock, authority } = await anAuthority();
  const w = await joinAs(authority, "w9", authority.token("worker"));
  const peer = verifyPeer(w.certPem, authority.verifier);
  const { csrPem } = await createNodeKeyAndCsr("w9");
  const renewed = await authority.renew(peer, new Uint8Array(Buffer.from(w.certPem)), csrPem);
  const info = readNodeCert(renewed.certPem);
  assert.deepEqual([info.nodeId, info.role, info.addresses], ["w9", "worker", ["10.0.0.2"]]);
  // Another node's CSR cannot ride on this node's renewal.
  const other = await createNodeKeyAndCsr("w10");
  await assert.rejects(authority.renew(peer, new Uint8Array(Buffer.from(w.certPem)), other.csrPem), { code: "VALIDATION_FAILED" });

  const before = authority.credentials.certPem;
  assert.equal(await authority.renewOwnIfDue(dataDir, "m1", ["10.0.0.1"]), false);
  await clock.advance(61 * 24 * 60 * 60 * 1000);
  assert.ok(needsRenewal(before, clock.now()));
  assert.equal(await authority.renewOwnIfDue(dataDir, "m1", ["10.0.0.1"]), true);
  assert.notEqual(authority.credentials.certPem, before);
  assert.ok(!needsRenewal(authority.credentials.certPem, clock.now()));
});
