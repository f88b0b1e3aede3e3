import assert from "node:assert/strict";
import { test } from "node:test";
import { FakeClock } from "../../test/harness/fake-clock.js";
import { ClusterCa } from "./ca.js";
import { acceptJoin, joinWithToken, type JoinRequest, type JoinTransport } from "./join.js";
import { JoinTokens, parseJoinToken, verifyCaMatchesToken } from "./join-token.js";
import { readNodeCert } from "./node-cert.js";
import { sealingKey } from "./seal.js";

async function aCluster() {
  const clock = new FakeClock();
  const ca = await ClusterCa.create({ clock });
  const sealKey = sealingKey(await ca.exportKeyPem(), "join-tokens");
  const { tokens, plain } = JoinTokens.create({ clock, caCertPem: ca.certPem, sealKey });
  return { clock, ca, tokens, plain, sealKey };
}

/** An in-memory manager that records what a joining node sent it. */
function aTransport(cluster: { ca: ClusterCa; tokens: JoinTokens }, shownCaPem = cluster.ca.certPem) {
  const sent: JoinRequest[] = [];
  const transport: JoinTransport = {
    fetchCaCert: () => Promise.resolve(shownCaPem),
    requestCertificate: (req) => {
      sent.push(req);
      return acceptJoin(req, cluster);
    },
  };
  return { transport, sent };
}

test("a token is BTN-1-<CA fingerprint>-<128-bit secret>, and worker and manager tokens differ", async () => {
  const { ca, plain } = await aCluster();
  const w = parseJoinToken(plain.worker);
  const m = parseJoinToken(plain.manager);
  assert.match(plain.worker, /^BTN-1-[a-z2-7]{52}-[a-z2-7]{26}$/);
  assert.equal(w.caFingerprint, ca.fingerprint);
  assert.equal(m.caFingerprint, ca.fingerprint);
  assert.notEqual(w.secret, m.secret);
  assert.throws(() => parseJoinToken("SWMTKN-1-abc-def"), { code: "VALIDATION_FAILED", fields: [{ path: ["token"], problem: "expected BTN-1-<52 base32 characters>-<26 base32 characters>" }] });
});

test("stored tokens hold no readable secret, survive a round trip, and print again only with the CA key", async () => {
  const { clock, ca, tokens, plain, sealKey } = await aCluster();
  const json = JSON.stringify(tokens.toJSON());
  assert.ok(!json.includes(parseJoinToken(plain.worker).secret));
  assert.ok(!json.includes(parseJoinToken(plain.manager).secret));
  const reloaded = JoinTokens.fromJSON(JSON.parse(json), { clock, caCertPem: ca.certPem, sealKey });
  assert.equal(reloaded.authorize(plain.manager), "manager");
  assert.equal(reloaded.plain("worker"), plain.worker);
  const other = sealingKey(await (await ClusterCa.create({ clock })).exportKeyPem(), "join-tokens");
  assert.throws(() => JoinTokens.fromJSON(JSON.parse(json), { clock, caCertPem: ca.certPem, sealKey: other }).plain("worker"), { code: "INTERNAL" });
  const rotated = reloaded.rotate("worker");
  assert.equal(reloaded.plain("worker"), rotated);
});

test("a good worker token joins as a worker with a certificate for its node id", async () => {
  const cluster = await aCluster();
  const { transport } = aTransport(cluster);
  const creds = await joinWithToken({ token: cluster.plain.worker, nodeId: "w1", addresses: ["10.0.0.2"] }, transport);
  assert.equal(creds.role, "worker");
  assert.equal(creds.caCertPem, cluster.ca.certPem);
  assert.deepEqual(readNodeCert(creds.certPem), { ...readNodeCert(creds.certPem), nodeId: "w1", role: "worker", addresses: ["10.0.0.2"] });
});

test("a good manager token joins as a manager", async () => {
  const cluster = await aCluster();
  const creds = await joinWithToken({ token: cluster.plain.manager, nodeId: "m2", requestedRole: "manager" }, aTransport(cluster).transport);
  assert.equal(readNodeCert(creds.certPem).role, "manager");
});

test("a wrong secret is refused", async () => {
  const cluster = await aCluster();
  const { caFingerprint } = parseJoinToken(cluster.plain.worker);
  const forged = `BTN-1-${caFingerprint}-${"a".repeat(26)}`;
  await assert.rejects(joinWithToken({ token: forged, nodeId: "w1" }, aTransport(cluster).transport), {
    code: "UNAUTHORIZED",
    fields: [{ path: ["token"], problem: "rejected" }],
  });
});

test("a token of another cluster is refused before its secret is sent", async () => {
  const cluster = await aCluster();
  const other = await aCluster();
  const { transport, sent } = aTransport(cluster);
  await assert.rejects(joinWithToken({ token: other.plain.worker, nodeId: "w1" }, transport), {
    code: "UNAUTHORIZED",
    fields: [{ path: ["token"], problem: "CA fingerprint mismatch" }],
  });
  assert.equal(sent.length, 0);
  assert.throws(() => verifyCaMatchesToken(cluster.ca.certPem, other.plain.worker), { code: "UNAUTHORIZED" });
  // A manager impersonating the cluster with its own CA is caught the same way.
  const mitm = aTransport(cluster, other.ca.certPem);
  await assert.rejects(joinWithToken({ token: cluster.plain.worker, nodeId: "w1" }, mitm.transport), { code: "UNAUTHORIZED" });
  assert.equal(mitm.sent.length, 0);
  // And the manager refuses it too, should a node skip the pin.
  assert.throws(() => cluster.tokens.authorize(other.plain.worker), { fields: [{ path: ["token"], problem: "CA fingerprint mismatch" }] });
});

test("a rotated token is refused for new joins; the other role's token still works", async () => {
  const cluster = await aCluster();
  const fresh = cluster.tokens.rotate("worker");
  assert.notEqual(fresh, cluster.plain.worker);
  assert.throws(() => cluster.tokens.authorize(cluster.plain.worker), { code: "UNAUTHORIZED", fields: [{ path: ["token"], problem: "rejected" }] });
  assert.equal(cluster.tokens.authorize(fresh), "worker");
  assert.equal(cluster.tokens.authorize(cluster.plain.manager), "manager");
  const creds = await joinWithToken({ token: fresh, nodeId: "w9" }, aTransport(cluster).transport);
  assert.equal(creds.role, "worker");
});

test("a worker token cannot obtain a manager role", async () => {
  const cluster = await aCluster();
  await assert.rejects(
    joinWithToken({ token: cluster.plain.worker, nodeId: "w1", requestedRole: "manager" }, aTransport(cluster).transport),
    { code: "FORBIDDEN", fields: [{ path: ["role"], problem: "requires the manager token" }] },
  );
  // Without asking, it simply gets a worker certificate: the token decides, never the CSR.
  assert.equal(cluster.tokens.authorize(cluster.plain.worker), "worker");
});
