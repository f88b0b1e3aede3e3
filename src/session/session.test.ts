// Node sessions over real mutual TLS on 127.0.0.1: the manager's SessionServer in front of a real
// Dispatcher (memory store), the agent's RemoteSession, and raw WebSockets for what a
// well-behaved client never does (a stale session, another node's task).
import assert from "node:assert/strict";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { WebSocket } from "ws";
import { aService, aTask } from "../../test/harness/builders.js";
import { waitFor } from "../../test/harness/baton.js";
import { ClusterCa } from "../ca/ca.js";
import { createNodeKeyAndCsr, type NodeCredentials } from "../ca/node-cert.js";
import { RevocationList } from "../ca/revocation.js";
import type { CertRole } from "../ca/role.js";
import { clientTlsOptions, serverTlsOptions } from "../ca/tls.js";
import { Dispatcher } from "../dispatcher/dispatcher.js";
import type { AssignmentChange, NodeDescription } from "../dispatcher/protocol.js";
import { systemClock } from "../lib/clock.js";
import { silentLogger } from "../lib/log.js";
import { createMemoryStore } from "../store/memory/memory-store.js";
import { RemoteSession } from "./client.js";
import { SessionServer } from "./server.js";
import { CloseCode, SESSION_PATH } from "./wire.js";

const clock = systemClock;
const revocations = new RevocationList();
const store = createMemoryStore({ clock });
const dispatcher = new Dispatcher({ store, clock, log: silentLogger() });
let ca: ClusterCa;
let sessions: SessionServer;
let server: Server;
let address = "";

async function creds(nodeId: string, role: CertRole): Promise<NodeCredentials> {
  const { keyPem, csrPem } = await createNodeKeyAndCsr(nodeId);
  const { certPem } = await ca.signNodeCsr({ csrPem, role, addresses: ["127.0.0.1"] });
  return { caCertPem: ca.certPem, certPem, keyPem };
}

const desc = (nodeId: string): NodeDescription => ({ nodeId, hostname: nodeId, role: "worker", resources: { cpus: 1, memoryBytes: 1e9 }, drivers: ["process"], platform: { os: "linux", arch: "x64" }, agentVersion: "test" });

/** A raw session: messages in order, for what RemoteSession never sends. */
async function rawSession(c: NodeCredentials) {
  const ws = new WebSocket(`wss://${address}${SESSION_PATH}`, { ...clientTlsOptions(c, { caCertPem: ca.certPem, clock, revocations: new RevocationList() }) });
  const got: { type: string; [k: string]: unknown }[] = [];
  let closed: number | undefined;
  ws.on("message", (d) => got.push(JSON.parse(String(d)) as { type: string }));
  ws.on("close", (code) => (closed = code));
  await new Promise<void>((res, rej) => {
    ws.once("open", () => res());
    ws.once("error", rej);
  });
  return { ws, got, closedWith: () => closed, send: (m: unknown) => ws.send(JSON.stringify(m)) };
}

before(async () => {
  ca = await ClusterCa.create({ clock });
  const manager = await creds("m1", "manager");
  sessions = new SessionServer({ dispatcher, clock, log: silentLogger(), verifier: { caCertPem: ca.certPem, clock, revocations } });
  server = createServer({ ...serverTlsOptions(manager), rejectUnauthorized: false });
  server.on("upgrade", (req, socket, head) => {
    if (!sessions.handleUpgrade(req, socket, head as Buffer)) socket.destroy();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  dispatcher.start();
  sessions.start();
});
after(() => {
  sessions.close();
  server.close();
  dispatcher.stop();
});

test("a worker registers over mutual TLS with its certificate's id and gets its full assignment set", async () => {
  const svc = aService({ name: "s1" });
  await store.update((tx) => {
    tx.create("services", svc);
  });
  const session = new RemoteSession({ managers: [address], credentials: await creds("w1", "worker"), clock, log: silentLogger() });
  const r = await session.register({ ...desc("w1"), role: "manager" });
  assert.equal(r.heartbeatPeriodMs, 500);
  // The role comes from the certificate, not from what the node claims.
  assert.equal(store.view((tx) => tx.get("nodes", "w1"))?.role, "worker");
  assert.equal(store.view((tx) => tx.get("nodes", "w1"))?.status.address, "127.0.0.1");
  await store.update((tx) => void tx.create("tasks", aTask(svc, { nodeId: "w1", state: "assigned" })));
  const changes: AssignmentChange[] = [];
  session.assignments((c) => changes.push(c));
  await waitFor(() => changes.some((c) => c.type === "full" && c.assignments.length === 1), 3000, "the full set with the task");
  session.close();
});

test("status reports apply only to the session's own node's tasks", async () => {
  const svc = aService({ name: "s2" });
  const mine = aTask(svc, { nodeId: "w2", state: "assigned" });
  const theirs = aTask(svc, { nodeId: "other", state: "assigned", slot: 2 });
  await store.update((tx) => {
    tx.create("services", svc);
    tx.create("tasks", mine);
    tx.create("tasks", theirs);
  });
  const s = await rawSession(await creds("w2", "worker"));
  s.send({ type: "register", desc: desc("w2") });
  await waitFor(() => s.got.some((m) => m.type === "registered"), 3000, "registered");
  s.send({ type: "status", id: 1, updates: [{ taskId: mine.id, state: "accepted", message: "", seq: 1 }, { taskId: theirs.id, state: "accepted", message: "", seq: 1 }] });
  await waitFor(() => s.got.some((m) => m.type === "ack" && m.id === 1), 3000, "ack");
  assert.equal(store.view((tx) => tx.get("tasks", mine.id))?.status.state, "accepted");
  assert.equal(store.view((tx) => tx.get("tasks", theirs.id))?.status.state, "assigned");
  s.ws.close();
});

test("a node cannot register as another node, and a newer session makes the older one stale", async () => {
  const c = await creds("w3", "worker");
  const liar = await rawSession(c);
  liar.send({ type: "register", desc: desc("w-someone-else") });
  await waitFor(() => liar.closedWith() === CloseCode.protocol, 3000, "liar closed");
  assert.equal(store.view((tx) => tx.get("nodes", "w-someone-else")), undefined);

  const first = await rawSession(c);
  first.send({ type: "register", desc: desc("w3") });
  await waitFor(() => first.got.some((m) => m.type === "registered"), 3000, "first registered");
  const second = await rawSession(c);
  second.send({ type: "register", desc: desc("w3") });
  await waitFor(() => second.got.some((m) => m.type === "registered"), 3000, "second registered");
  assert.notEqual(first.got.find((m) => m.type === "registered")?.sessionId, second.got.find((m) => m.type === "registered")?.sessionId);
  await waitFor(() => first.closedWith() === CloseCode.replaced, 3000, "the first session closed as replaced");
  second.ws.close();
});

test("the session reconnects by itself, re-registers and receives a fresh full set", async () => {
  const session = new RemoteSession({ managers: [address], credentials: await creds("w4", "worker"), clock, log: silentLogger() });
  await session.register(desc("w4"));
  const fulls: AssignmentChange[] = [];
  session.assignments((c) => c.type === "full" && fulls.push(c));
  await waitFor(() => fulls.length === 1, 3000, "first full set");
  // The manager drops every connection (a restart, a network blip).
  sessions.disconnectAll();
  await waitFor(() => fulls.length === 2, 5000, "a second full set after the reconnect");
  assert.ok(session.connectedTo);
  session.close();
});

test("a removed node is refused at the handshake and told not to come back; a client certificate opens no session", async () => {
  const c = await creds("w5", "worker");
  revocations.revokeNode("w5");
  let removed = "";
  const session = new RemoteSession({ managers: [address], credentials: c, clock, log: silentLogger(), onRemoved: (m) => (removed = m) });
  await assert.rejects(session.register(desc("w5")), { code: "FORBIDDEN" });
  assert.match(removed, /removed from the cluster/);

  const user = await creds("client-alice", "client");
  await assert.rejects(rawSession(user), /Unexpected server response: 403/);
});

test("malformed descriptions and status updates from a node are refused or dropped, never stored", async () => {
  const svc = aService({ name: "s6" });
  const mine = aTask(svc, { nodeId: "w6", state: "assigned" });
  await store.update((tx) => {
    tx.create("services", svc);
    tx.create("tasks", mine);
  });
  const c = await creds("w6", "worker");
  const bad = await rawSession(c);
  bad.send({ type: "register", desc: { ...desc("w6"), hostname: { evil: true } } });
  await waitFor(() => bad.closedWith() === CloseCode.protocol, 3000, "malformed register closed");
  assert.equal(store.view((tx) => tx.get("nodes", "w6")), undefined);

  const s = await rawSession(c);
  s.send({ type: "register", desc: desc("w6") });
  await waitFor(() => s.got.some((m) => m.type === "registered"), 3000, "registered");
  s.send({ type: "status", id: 7, updates: [{ taskId: mine.id, state: "accepted", message: { x: 1 }, seq: 1 }, { taskId: mine.id, state: "bogus", seq: 2 }, "junk"] });
  await waitFor(() => s.got.some((m) => m.type === "ack" && m.id === 7), 3000, "ack");
  assert.equal(store.view((tx) => tx.get("tasks", mine.id))?.status.state, "assigned");
  s.send({ type: "status", id: 8, updates: [{ taskId: mine.id, state: "accepted", message: "ok", seq: 3 }] });
  await waitFor(() => s.got.some((m) => m.type === "ack" && m.id === 8), 3000, "ack");
  assert.equal(store.view((tx) => tx.get("tasks", mine.id))?.status.state, "accepted");
  s.ws.close();
});

test("a manager reads a remote node's task stats over its session; malformed entries are dropped, an absent node is an error", async () => {
  const session = new RemoteSession({ managers: [address], credentials: await creds("w9", "worker"), clock, log: silentLogger() });
  session.serveStats(async (ids) => ids.map((taskId) => (taskId === "bad" ? ({ taskId, cpus: "lots" } as unknown as { taskId: string }) : { taskId, cpus: 0.25, memoryBytes: 1024 })));
  await session.register(desc("w9"));
  await waitFor(() => sessions.connectedNodes().includes("w9"), 3000, "w9 connected");
  assert.deepEqual(await sessions.taskStats("w9", ["t1", "bad"]), [{ taskId: "t1", cpus: 0.25, memoryBytes: 1024 }]);
  await assert.rejects(sessions.taskStats("nobody", ["t1"]), /node nobody is not connected/);
  session.close();
});
