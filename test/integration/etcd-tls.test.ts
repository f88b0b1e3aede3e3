// TLS to an etcd the user runs (--etcd-ca/--etcd-cert/--etcd-key), and `baton ha snapshot save`
// with a restore through etcdctl: a real etcd member with --client-cert-auth and certificates
// made by Baton's CA code, a real `baton up` process.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BatonProcess, runCli } from "../harness/baton.js";
import { ETCD_BINARY, etcdUnavailable, freePort, startEtcd, type EtcdCluster } from "../harness/etcd.js";
import { ensureMemberCertificate, loadOrCreateEtcdCa } from "../../src/ha/etcd-pki.js";
import { ClusterCa } from "../../src/ca/ca.js";
import { systemClock } from "../../src/lib/clock.js";
import { BatonError } from "../../src/lib/errors.js";
import { newEtcdClient, type EtcdTls } from "../../src/store/etcd/etcd-client.js";
import { EtcdStore } from "../../src/store/etcd/etcd-store.js";
import { aService } from "../harness/builders.js";

const ETCDCTL = "/usr/bin/etcdctl";

/** The restore check needs etcdctl (package etcd-client): skipped without it, except under CI. */
function etcdctlUnavailable(): string | undefined {
  if (existsSync(ETCDCTL)) return undefined;
  if (process.env.CI === "true") throw new Error(`CI=true and no ${ETCDCTL}: install etcd-client`);
  return `no ${ETCDCTL} (package etcd-client)`;
}

describe("TLS to an etcd the user runs", { skip: etcdUnavailable() }, () => {
  let dir: string;
  let etcd: EtcdCluster;
  let client: { files: { caFile: string; certFile: string; keyFile: string }; tls: EtcdTls };
  let baton: BatonProcess | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "baton-etcd-tls-"));
    const ca = await loadOrCreateEtcdCa(dir, systemClock);
    const server = await ensureMemberCertificate(ca, { dir: join(dir, "server"), name: "etcd-server", addresses: ["127.0.0.1"], clock: systemClock });
    client = await ensureMemberCertificate(ca, { dir: join(dir, "client"), name: "baton-client", addresses: [], clock: systemClock });
    etcd = await startEtcd({ tls: server.files });
  });
  after(async () => {
    await baton?.destroy();
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the store connects over https with a client certificate; without one, or with another CA's, it is refused", async () => {
    assert.match(etcd.endpoints[0]!, /^https:/);
    const store = await EtcdStore.open({ endpoints: etcd.endpoints, tls: client.tls });
    const svc = aService({ name: "tls-web" });
    await store.update((tx) => tx.create("services", { id: svc.id, spec: svc.spec, specVersion: 1 }));
    assert.equal(store.view((tx) => tx.serviceByName("tls-web"))?.id, svc.id);
    store.close();

    await assert.rejects(EtcdStore.open({ endpoints: etcd.endpoints, tls: { caCertPem: client.tls.caCertPem } }), (e: unknown) => e instanceof BatonError && e.code === "UNAVAILABLE");
    const other = await ClusterCa.create({ clock: systemClock });
    const stranger = await ensureMemberCertificate(other, { dir: join(dir, "stranger"), name: "stranger", addresses: [], clock: systemClock });
    await assert.rejects(EtcdStore.open({ endpoints: etcd.endpoints, tls: { ...stranger.tls, caCertPem: client.tls.caCertPem } }), (e: unknown) => e instanceof BatonError && e.code === "UNAVAILABLE");
    // Plain http to a TLS member is no store either.
    await assert.rejects(EtcdStore.open({ endpoints: etcd.endpoints.map((u) => u.replace("https:", "http:")) }), (e: unknown) => e instanceof BatonError && e.code === "UNAVAILABLE");
  });

  test("baton up --store etcd://… --etcd-ca/--etcd-cert/--etcd-key runs on it; bad flags are named", async () => {
    const url = `etcd://${etcd.endpoints[0]!.replace("https://", "")}`;
    const { caFile, certFile, keyFile } = client.files;
    const fresh = (): string => mkdtempSync(join(dir, "d-"));
    const up = (args: string[]) => spawnSync(process.execPath, [join(import.meta.dirname, "..", "..", "bin", "baton.js"), "up", "--data-dir", fresh(), "--dns-addr", "127.0.0.1:0", ...args], { encoding: "utf8", timeout: 30_000 });
    const noKey = up(["--store", url, "--etcd-ca", caFile, "--etcd-cert", certFile]);
    assert.equal(noKey.status, 1);
    assert.match(noKey.stderr, /--etcd-key: --etcd-cert and --etcd-key go together/);
    const missing = up(["--store", url, "--etcd-ca", join(dir, "nope.pem"), "--etcd-cert", certFile, "--etcd-key", keyFile]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /--etcd-ca .*nope\.pem: ENOENT/);
    const noStore = up(["--etcd-ca", caFile]);
    assert.equal(noStore.status, 1);
    assert.match(noStore.stderr, /add --store etcd:\/\//);

    baton = new BatonProcess(undefined, ["--dns-addr", "127.0.0.1:0", "--store", url, "--etcd-ca", caFile, "--etcd-cert", certFile, "--etcd-key", keyFile]);
    await baton.start();
    const info = JSON.parse(await baton.cliOk("info", "--format", "json")) as { store: string };
    assert.equal(info.store, "etcd");
    // The service of the first test is there: the same etcd.
    assert.match(await baton.cliOk("service", "ls"), /tls-web/);
    const members = (await baton.cliOk("ha", "members", "--format", "json")).trim().split("\n").map((l) => JSON.parse(l) as { clientUrls: string[]; healthy: boolean; leader: boolean });
    assert.deepEqual(members.map((m) => [m.clientUrls, m.healthy, m.leader]), [[etcd.endpoints, true, true]]);
  });

  test("baton ha snapshot save writes an etcd snapshot that etcdctl restores into a member holding the store", { skip: etcdctlUnavailable() }, async () => {
    assert.ok(baton, "baton up from the previous test");
    const file = join(dir, "backup.db");
    const out = await baton.cliOk("ha", "snapshot", "save", file).catch((e: Error) => { throw new Error(`${e.message}\n${baton!.output.slice(-3000)}`); });
    assert.match(out, /snapshot \(store revision \d+\) saved to .*backup\.db \(\d+ bytes\)/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(existsSync(`${file}.part`), false);
    const status = spawnSync(ETCDCTL, ["snapshot", "status", file, "-w", "json"], { encoding: "utf8", env: { ...process.env, ETCDCTL_API: "3" } });
    assert.equal(status.status, 0, status.stderr);
    assert.ok((JSON.parse(status.stdout) as { totalKey: number }).totalKey > 0);

    // Restore into a new one-member cluster (plain http on loopback, for the check only).
    const peer = await freePort();
    const clientPort = await freePort();
    const restored = join(dir, "restored");
    const r = spawnSync(
      ETCDCTL,
      ["snapshot", "restore", file, "--name", "r", "--data-dir", restored, "--initial-cluster", `r=http://127.0.0.1:${peer}`, "--initial-advertise-peer-urls", `http://127.0.0.1:${peer}`],
      { encoding: "utf8", env: { ...process.env, ETCDCTL_API: "3" } },
    );
    assert.equal(r.status, 0, r.stderr);
    const { spawn } = await import("node:child_process");
    const member = spawn(ETCD_BINARY, ["--name", "r", "--data-dir", restored, "--listen-client-urls", `http://127.0.0.1:${clientPort}`, "--advertise-client-urls", `http://127.0.0.1:${clientPort}`, "--listen-peer-urls", `http://127.0.0.1:${peer}`, "--initial-advertise-peer-urls", `http://127.0.0.1:${peer}`, "--initial-cluster", `r=http://127.0.0.1:${peer}`], { stdio: "ignore" });
    try {
      const c = newEtcdClient({ endpoints: [`http://127.0.0.1:${clientPort}`] });
      let id: string | null = null;
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        id = await c.get("/baton/names/services/tls-web").string().catch(() => null);
        if (id) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      c.close();
      const svc = await runCli(baton.socket, ["service", "inspect", "tls-web"]);
      assert.equal(id, (JSON.parse(svc.stdout) as { id: string }[])[0]!.id, "the restored member holds the service's name key");
    } finally {
      member.kill("SIGKILL");
    }
  });
});

/** A baton server with any command line (`init …`, `join …`), not only `up`. */
class ServerBaton extends BatonProcess {
  constructor(private readonly argv: string[]) {
    super();
  }
  override async start(): Promise<void> {
    const { spawn } = await import("node:child_process");
    this.proc = spawn(process.execPath, [join(import.meta.dirname, "..", "..", "bin", "baton.js"), ...this.argv, "--data-dir", this.dataDir, "--log-level", "info", "--dns-addr", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"], detached: true });
    this.proc.stdout!.on("data", (d: Buffer) => (this.output += d.toString()));
    this.proc.stderr!.on("data", (d: Buffer) => (this.output += d.toString()));
    const deadline = Date.now() + 30_000;
    while (!(existsSync(this.socket) && (await this.cli("info")).code === 0)) {
      if (this.proc.exitCode !== null || Date.now() > deadline) throw new Error(`baton ${this.argv.join(" ")} did not start; output:\n${this.output.slice(-3000)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }
}

describe("a manager joins a cluster whose store is a user's TLS etcd", { skip: etcdUnavailable() }, () => {
  let dir: string;
  let etcd: EtcdCluster;
  const batons: ServerBaton[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "baton-etcd-tls-join-"));
    const ca = await loadOrCreateEtcdCa(dir, systemClock);
    const server = await ensureMemberCertificate(ca, { dir: join(dir, "server"), name: "etcd-server", addresses: ["127.0.0.1"], clock: systemClock });
    etcd = await startEtcd({ tls: server.files });
  });
  after(async () => {
    for (const b of batons) await b.destroy().catch(() => undefined);
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the join answer hands over the etcd TLS PEMs: the joiner keeps them 0600 in its data dir and runs on the same store", async () => {
    const ca = await loadOrCreateEtcdCa(dir, systemClock);
    const client = await ensureMemberCertificate(ca, { dir: join(dir, "client"), name: "baton-client", addresses: [], clock: systemClock });
    const url = `etcd://${etcd.endpoints[0]!.replace("https://", "")}`;
    const [p1, p2] = [await freePort(), await freePort()];
    const m1 = new ServerBaton(["init", "--advertise-addr", "127.0.0.1", "--listen-addr", `127.0.0.1:${p1}`, "--store", url, "--etcd-ca", client.files.caFile, "--etcd-cert", client.files.certFile, "--etcd-key", client.files.keyFile, "--heartbeat-period", "300ms"]);
    batons.push(m1);
    await m1.start();
    await m1.cliOk("service", "create", "-d", "--name", "before-join", "--replicas", "0", process.execPath, "-e", "0");
    const token = (await m1.cliOk("join-token", "manager", "-q")).trim();
    const m2 = new ServerBaton(["join", "--token", token, "--advertise-addr", "127.0.0.1", "--listen-addr", `127.0.0.1:${p2}`, `127.0.0.1:${p1}`]);
    batons.push(m2);
    await m2.start();
    const { readFileSync } = await import("node:fs");
    const cfg = JSON.parse(readFileSync(join(m2.dataDir, "cluster.json"), "utf8")) as { store: string; etcdTls: { ca: string; cert: string; key: string }; heartbeatPeriodMs?: number };
    assert.equal(cfg.store, url);
    assert.equal(cfg.heartbeatPeriodMs, 300);
    for (const f of [cfg.etcdTls.ca, cfg.etcdTls.cert, cfg.etcdTls.key]) {
      assert.ok(f.startsWith(m2.dataDir), `${f} lives in the joiner's data dir`);
      assert.equal(statSync(f).mode & 0o777, 0o600, f);
    }
    assert.equal(readFileSync(cfg.etcdTls.key, "utf8"), client.tls.keyPem);
    assert.match(await m2.cliOk("service", "ls"), /before-join/);
    await m2.cliOk("service", "create", "-d", "--name", "after-join", "--replicas", "0", process.execPath, "-e", "0");
    assert.match(await m1.cliOk("service", "ls"), /after-join/);
  });

  test("a worker promoted on a TLS etcd gets the PEMs the same way and serves as a manager; demoted, it is a worker again", async () => {
    const [m1] = batons as [ServerBaton];
    const p3 = await freePort();
    const token = (await m1.cliOk("join-token", "worker", "-q")).trim();
    const p1 = JSON.parse(await m1.cliOk("info", "--format", "json")) as { listenAddr: string };
    const w = new ServerBaton(["join", "--token", token, "--advertise-addr", "127.0.0.1", "--listen-addr", `127.0.0.1:${p3}`, `127.0.0.1:${p1.listenAddr.split(":")[1]}`]);
    batons.push(w);
    await w.start();
    const id = (JSON.parse(await w.cliOk("info", "--format", "json")) as { nodeId: string }).nodeId;
    assert.match(await m1.cliOk("node", "promote", id), /is now a manager/);
    const info = JSON.parse(await w.cliOk("info", "--format", "json")) as { role: string; store: string; listenAddr: string };
    assert.deepEqual([info.role, info.store, info.listenAddr], ["manager", "etcd", `127.0.0.1:${p3}`]);
    assert.match(await w.cliOk("service", "ls"), /after-join/, "its store is the cluster's");
    assert.match(await m1.cliOk("node", "demote", id), /is now a worker/);
    assert.equal((JSON.parse(await w.cliOk("info", "--format", "json")) as { role: string }).role, "worker");
  });

  test("the first manager demotes itself through its own socket: it steps down, the other manager leads, it runs on as a worker", async () => {
    const [m1, m2] = batons as [ServerBaton, ServerBaton];
    const id = (JSON.parse(await m1.cliOk("info", "--format", "json")) as { nodeId: string }).nodeId;
    assert.match(await m1.cliOk("node", "demote", id), /is the manager answering: it steps down now/);
    const deadline = Date.now() + 30_000;
    let role = "";
    while (Date.now() < deadline && role !== "worker") {
      role = ((await m1.cli("info", "--format", "json").then((r) => (r.code === 0 ? (JSON.parse(r.stdout) as { role: string }) : { role: "" }))).role);
      await new Promise((res) => setTimeout(res, 200));
    }
    assert.equal(role, "worker");
    const m2info = JSON.parse(await m2.cliOk("info", "--format", "json")) as { isLeader: boolean; managers: string[] };
    assert.equal(m2info.isLeader, true);
    assert.equal(m2info.managers.length, 1, m2info.managers.join(", "));
    // Demoting the last manager is refused.
    const last = await m2.cli("node", "demote", (JSON.parse(await m2.cliOk("info", "--format", "json")) as { nodeId: string }).nodeId);
    assert.equal(last.code, 1);
    assert.match(last.stderr, /is the last manager/);
  });
});
