// Concurrent clients against a real Baton API, their history checked for linearizability
// (test/harness/linearizability, docs/testing.md): one manager on SQLite (clients on the unix
// socket and on the TCP listener with mutual TLS), and one on a 3-member etcd cluster.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BatonProcess, BIN, ROOT, runCli, waitFor } from "../harness/baton.js";
import { etcdUnavailable, freePort, startEtcd, type EtcdCluster } from "../harness/etcd.js";
import { checkHistory, recordHistory, serviceModel, type Endpoint, type ServiceOp } from "../harness/linearizability/index.js";

const CLIENTS = 5;
const OPS = 100;
const NAMES = ["lin-a", "lin-b", "lin-c"];
// Baton's updater writes a service (its update status) after a spec change: versions may move by themselves.
const model = serviceModel({ systemWrites: true });

function summary(h: ServiceOp[]): string {
  const count = (op: string, outcome: string) => h.filter((o) => o.op === op && o.outcome === outcome).length;
  return ["create", "update", "delete", "get"].map((op) => `${op} ok ${count(op, "ok")} fail ${count(op, "fail")} timeout ${count(op, "timeout")}`).join("; ");
}

/** The history is linearizable, and exercised every kind of operation (a test that cannot fail proves nothing). */
function assertLinearizable(h: ServiceOp[]): void {
  assert.equal(h.length, CLIENTS * OPS);
  const r = checkHistory(model, h);
  assert.ok(r.ok, r.ok ? "" : `${r.text}\n${summary(h)}`);
  for (const op of ["create", "update", "delete", "get"]) {
    assert.ok(h.some((o) => o.op === op && o.outcome === "ok"), `no ${op} succeeded: ${summary(h)}`);
  }
  assert.ok(h.some((o) => o.outcome === "fail"), `no conflict at all: ${summary(h)}`);
  assert.ok(h.some((o) => o.input.id !== undefined && o.outcome === "ok"), "no operation by id succeeded");
  // The same recording with one read changed to show a write nobody made is caught.
  const i = h.findIndex((o) => o.op === "get" && o.outcome === "ok");
  const broken = h.map((o, k) => (k === i ? { ...o, output: { ...o.output, spec: "never-written" } } : o));
  assert.equal(checkHistory(model, broken).ok, false);
}

/** `baton init` on loopback: the unix socket and a TCP listener with mutual TLS, same manager. */
class InitBaton {
  readonly dataDir = mkdtempSync(join(tmpdir(), "baton-lin-"));
  proc: ChildProcess | undefined;
  output = "";
  port = 0;
  get socket(): string {
    return join(this.dataDir, "baton.sock");
  }
  async start(): Promise<void> {
    this.port = await freePort();
    this.proc = spawn(process.execPath, [BIN, "init", "--advertise-addr", "127.0.0.1", "--listen-addr", `127.0.0.1:${this.port}`, "--data-dir", this.dataDir], { stdio: ["ignore", "pipe", "pipe"], detached: true, cwd: ROOT });
    this.proc.stdout!.on("data", (d: Buffer) => (this.output += d.toString()));
    this.proc.stderr!.on("data", (d: Buffer) => (this.output += d.toString()));
    await waitFor(async () => existsSync(this.socket) && (await runCli(this.socket, ["node", "ls", "-q"])).code === 0, 15_000, () => `baton init never answered:\n${this.output.slice(-3000)}`);
  }
  async tcpEndpoint(): Promise<Endpoint> {
    const dir = join(this.dataDir, "client-cert");
    const r = await runCli(this.socket, ["cert", "create", "--out", dir]);
    assert.equal(r.code, 0, r.stderr);
    const read = (f: string) => readFileSync(join(dir, f), "utf8");
    return { host: "127.0.0.1", port: this.port, ca: read("ca.pem"), cert: read("cert.pem"), key: read("key.pem") };
  }
  async destroy(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      await runCli(this.socket, ["down"]);
      await new Promise<void>((r) => {
        if (p.exitCode !== null || p.signalCode !== null) return r();
        p.once("exit", () => r());
        p.kill("SIGKILL");
      });
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

describe("linearizability of the service API: SQLite store", () => {
  const b = new InitBaton();
  before(() => b.start());
  after(() => b.destroy());

  test(`${CLIENTS} clients × ${OPS} operations on 3 names, over the socket and mutual TLS: linearizable`, async (t) => {
    const tcp = await b.tcpEndpoint();
    const t0 = performance.now();
    const h = await recordHistory({ endpoints: [{ socketPath: b.socket }, tcp], clients: CLIENTS, opsPerClient: OPS, names: NAMES, seed: 11 });
    t.diagnostic(`recorded in ${(performance.now() - t0).toFixed(0)} ms: ${summary(h)}`);
    assertLinearizable(h);
  });

  test("the recorder refuses names that already exist (the model starts from no services)", async () => {
    const r = await runCli(b.socket, ["service", "create", "--name", "lin-taken", "--replicas", "0", "-d", "sleep", "3600"]);
    assert.equal(r.code, 0, r.stderr);
    await assert.rejects(recordHistory({ endpoints: [{ socketPath: b.socket }], clients: 1, opsPerClient: 1, names: ["lin-free", "lin-taken"] }), /service "lin-taken" answered 200: the recorder needs names that do not exist yet/);
  });
});

const noEtcd = etcdUnavailable();
describe("linearizability of the service API: etcd store (3 members)", { skip: noEtcd }, () => {
  let etcd: EtcdCluster;
  let b: BatonProcess;
  before(async () => {
    etcd = await startEtcd({ members: 3 });
    b = new BatonProcess(undefined, ["--store", `etcd://${etcd.endpoints.map((e) => e.replace("http://", "")).join(",")}`]);
    await b.start();
  });
  after(async () => {
    await b?.destroy();
    await etcd?.stop();
  });

  test(`${CLIENTS} clients × ${OPS} operations on 3 names: linearizable`, async (t) => {
    const t0 = performance.now();
    const h = await recordHistory({ endpoints: [{ socketPath: b.socket }], clients: CLIENTS, opsPerClient: OPS, names: NAMES, seed: 12 });
    t.diagnostic(`recorded in ${(performance.now() - t0).toFixed(0)} ms: ${summary(h)}`);
    assertLinearizable(h);
  });
});
