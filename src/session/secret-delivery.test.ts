// Secrets across nodes (issue 13), at the session level: a real Dispatcher that opens sealed
// secrets, the manager's SessionServer over mutual TLS on 127.0.0.1, and two real Agents (their
// own data dirs, RemoteSessions) whose driver is the in-memory one. The worker running a task
// with the secret gets its file; the other worker never receives the value, on the wire or on disk.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { aService, aTask } from "../../test/harness/builders.js";
import { waitFor } from "../../test/harness/baton.js";
import { FakeDriver } from "../../test/harness/fake-driver.js";
import { Agent } from "../agent/agent.js";
import { ClusterCa } from "../ca/ca.js";
import { createNodeKeyAndCsr } from "../ca/node-cert.js";
import { RevocationList } from "../ca/revocation.js";
import { serverTlsOptions } from "../ca/tls.js";
import { Dispatcher } from "../dispatcher/dispatcher.js";
import type { AgentSession } from "../dispatcher/protocol.js";
import { systemClock as clock } from "../lib/clock.js";
import { silentLogger } from "../lib/log.js";
import { secretBox } from "../secrets/data-key.js";
import { createMemoryStore } from "../store/memory/memory-store.js";
import { RemoteSession } from "./client.js";
import { SessionServer } from "./server.js";

const box = secretBox(randomBytes(32));
const store = createMemoryStore({ clock });
const dispatcher = new Dispatcher({ store, clock, log: silentLogger(), openSecret: box.open });
const value = `s3cret-${randomBytes(16).toString("hex")}`;
const encoded = Buffer.from(value).toString("base64");
const root = mkdtempSync(join(tmpdir(), "baton-secret-nodes-"));
let ca: ClusterCa;
let sessions: SessionServer;
let server: Server;
let address = "";

/** Every file under dir, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : []));
}

/** A worker: a real Agent over a real session; everything its session received, as JSON. */
async function worker(nodeId: string) {
  const dataDir = join(root, nodeId);
  // The agent's id is its certificate's: the session refuses any other.
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(join(dataDir, "node-id"), `${nodeId}\n`);
  const { keyPem, csrPem } = await createNodeKeyAndCsr(nodeId);
  const { certPem } = await ca.signNodeCsr({ csrPem, role: "worker", addresses: ["127.0.0.1"] });
  const remote = new RemoteSession({ managers: [address], credentials: { caCertPem: ca.certPem, certPem, keyPem }, clock, log: silentLogger() });
  const received: string[] = [];
  const session: AgentSession = {
    register: (d) => remote.register(d),
    heartbeat: () => remote.heartbeat(),
    assignments: (fn) => remote.assignments((c) => (received.push(JSON.stringify(c)), fn(c))),
    reportStatus: (u) => remote.reportStatus(u),
    endpoints: (fn) => remote.endpoints((c) => (received.push(JSON.stringify(c)), fn(c))),
    close: () => remote.close(),
  };
  // Files under the data dir (no tmpfs named): the test can search all a node holds.
  const agent = new Agent({ session, driver: new FakeDriver(clock), clock, log: silentLogger(), dataDir, filesTmpfs: join(dataDir, "no-tmpfs") });
  await agent.start();
  return { agent, dataDir, received, close: () => (agent.detach(), remote.close()) };
}

before(async () => {
  ca = await ClusterCa.create({ clock });
  const { keyPem, csrPem } = await createNodeKeyAndCsr("m1");
  const { certPem } = await ca.signNodeCsr({ csrPem, role: "manager", addresses: ["127.0.0.1"] });
  sessions = new SessionServer({ dispatcher, clock, log: silentLogger(), verifier: { caCertPem: ca.certPem, clock, revocations: new RevocationList() } });
  server = createServer({ ...serverTlsOptions({ caCertPem: ca.certPem, certPem, keyPem }), rejectUnauthorized: false });
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
  rmSync(root, { recursive: true, force: true });
});

test("across nodes: the worker running a task with the secret gets its file (0400), removed when the task stops; the other worker never receives it", async () => {
  const secretId = "sec1";
  await store.update((tx) => void tx.create("secrets", { id: secretId, name: "db_password", labels: {}, sealed: box.seal(secretId, Buffer.from(value)), size: value.length }));
  const withSecret = aService({ name: "api" });
  withSecret.spec.task.secrets = [{ id: secretId, name: "db_password", target: "db_password", mode: 0o400 }];
  const without = aService({ name: "web" });
  const a = aTask(withSecret, { nodeId: "w1", state: "assigned" });
  const b = aTask(without, { nodeId: "w2", state: "assigned" });
  await store.update((tx) => {
    tx.create("services", withSecret);
    tx.create("services", without);
    tx.create("tasks", a);
    tx.create("tasks", b);
  });
  const w1 = await worker("w1");
  const w2 = await worker("w2");
  try {
    const running = (id: string) => store.view((tx) => tx.get("tasks", id))?.status.state === "running";
    await waitFor(() => running(a.id) && running(b.id), 5000, "both tasks running");

    // w1: the file of its task, with the value and mode 0400, in the task's own directory.
    const file = join(w1.dataDir, "files", a.id, "secrets", "db_password");
    assert.equal(readFileSync(file, "utf8"), value);
    assert.equal(statSync(file).mode & 0o777, 0o400);
    assert.ok(w1.received.join("").includes(encoded), "w1's session carried the secret to w1");

    // w2: nothing of it, neither in what its session received nor anywhere in its data dir.
    assert.ok(w2.received.some((m) => m.includes(b.id)), "w2 received its own assignment");
    assert.equal(w2.received.some((m) => m.includes(value) || m.includes(encoded)), false, "w2's session never carried the secret");
    assert.equal(existsSync(join(w2.dataDir, "files", b.id)), false, "w2's task has no files directory");
    for (const f of filesUnder(w2.dataDir)) {
      const bytes = readFileSync(f);
      assert.equal(bytes.includes(value) || bytes.includes(encoded), false, `${f} holds the secret`);
    }

    // The task stops: its files go.
    await store.update((tx) => void tx.update("tasks", { ...tx.get("tasks", a.id)!, desiredState: "shutdown" }));
    await waitFor(() => !existsSync(join(w1.dataDir, "files", a.id)), 5000, "w1's task files removed after the stop");
  } finally {
    w1.close();
    w2.close();
  }
});
