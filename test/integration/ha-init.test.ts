// `baton init --ha` in a network namespace: the manager starts its managed etcd member (TLS),
// runs its store on it, heals a kill -9 of etcd, stops etcd with itself, and resumes on it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HELLO, waitFor } from "../harness/baton.js";
import { etcdUnavailable } from "../harness/etcd.js";
import { NetnsBaton, createTestNetwork, netnsSkipReason, type TestNetwork } from "../harness/netns.js";

const skip = netnsSkipReason() ?? etcdUnavailable();
const ETCDCTL = "/usr/bin/etcdctl";

/** The restore needs etcdctl (package etcd-client): skipped without it, except under CI. */
function etcdctlUnavailable(): string | undefined {
  if (existsSync(ETCDCTL)) return undefined;
  if (process.env.CI === "true") throw new Error(`CI=true and no ${ETCDCTL}: install etcd-client`);
  return `no ${ETCDCTL} (package etcd-client)`;
}

const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));

describe("baton init --ha: the manager on its managed etcd member", { skip }, () => {
  let net: TestNetwork;
  let baton: NetnsBaton;

  before(async () => {
    net = await createTestNetwork({ hosts: 1, prefix: "hai" });
  });
  after(async () => {
    await baton?.destroy();
    await net?.destroy();
  });

  test("init --ha starts a TLS etcd member and runs the store on it; etcd kill -9 is healed; a stop stops etcd; a later start resumes", async () => {
    const h1 = net.hosts[0]!;
    baton = new NetnsBaton(net, h1, { argv: ["init", "--ha", "--advertise-addr", h1.address, "--dns-addr", "127.0.0.1:0"], startTimeoutMs: 40_000 });
    await baton.start();
    const info = JSON.parse(await baton.cliOk("info", "--format", "json")) as Record<string, unknown>;
    assert.equal(info.store, "etcd");
    assert.equal(info.etcdMember, info.nodeId);
    assert.equal(info.etcdClientUrl, `https://${h1.address}:2379`);
    const cfg = JSON.parse(readFileSync(join(baton.dataDir, "cluster.json"), "utf8")) as { ha?: boolean; store?: string };
    assert.equal(cfg.ha, true);
    assert.equal(cfg.store, undefined);
    await baton.cliOk("service", "create", "-d", "--name", "web", "--replicas", "1", "node", HELLO);
    const members = await baton.cliOk("ha", "members");
    assert.match(members, /^ID\s+NAME\s+CLIENT URL\s+STATUS\n[0-9a-f]+\s+\S+\s+https:\/\/[\d.]+:2379\s+leader\n$/);
    assert.ok(members.includes(String(info.nodeId)));

    const pidFile = join(baton.dataDir, "etcd", "etcd.pid");
    const first = Number(readFileSync(pidFile, "utf8"));
    process.kill(first, "SIGKILL");
    await waitFor(() => Number(readFileSync(pidFile, "utf8")) !== first, 10_000, "etcd restarted by baton");
    await waitFor(async () => (await baton.cli("service", "update", "-d", "--env-add", "V=2", "web")).code === 0, 20_000, "a write through the restarted member");
    assert.match(readFileSync(join(baton.dataDir, "logs", "etcd.log"), "utf8"), /"msg":"serving client traffic securely"/);

    const second = Number(readFileSync(pidFile, "utf8"));
    await baton.kill("SIGTERM");
    await waitFor(() => !alive(second), 15_000, "etcd stopped with baton");

    baton = new NetnsBaton(net, h1, { argv: ["up", "--dns-addr", "127.0.0.1:0"], dataDir: baton.dataDir, startTimeoutMs: 40_000 });
    await baton.start();
    assert.equal((JSON.parse(await baton.cliOk("info", "--format", "json")) as { store: string }).store, "etcd");
    const svc = JSON.parse(await baton.cliOk("service", "inspect", "web")) as { spec: { task: { env: Record<string, string> } } }[];
    assert.equal(svc[0]!.spec.task.env.V, "2");
  });

  test("restore as docs/ha.md says: a snapshot and the CAs make a new first manager with the same services", { skip: etcdctlUnavailable() }, async () => {
    const h1 = net.hosts[0]!;
    const scratch = mkdtempSync(join(tmpdir(), "baton-restore-"));
    try {
      const file = join(scratch, "baton.db");
      await baton.cliOk("ha", "snapshot", "save", file);
      const old = baton.dataDir;
      const id = readFileSync(join(old, "agent", "node-id"), "utf8").trim();
      await baton.cliOk("down");
      await waitFor(() => !baton.running, 15_000, "the old manager stopped");
      // The documented steps, on a fresh data dir of the same host.
      const fresh = mkdtempSync(join(tmpdir(), "baton-ns-"));
      mkdirSync(join(fresh, "agent"), { recursive: true });
      cpSync(join(old, "agent", "node-id"), join(fresh, "agent", "node-id"));
      cpSync(join(old, "ca"), join(fresh, "ca"), { recursive: true });
      const peer = `https://${h1.address}:2380`;
      const r = spawnSync(ETCDCTL, ["snapshot", "restore", file, "--name", id, "--data-dir", join(fresh, "etcd", "data"), "--initial-cluster", `${id}=${peer}`, "--initial-advertise-peer-urls", peer], {
        encoding: "utf8",
        env: { ...process.env, ETCDCTL_API: "3" },
      });
      assert.equal(r.status, 0, r.stderr);
      rmSync(old, { recursive: true, force: true });
      baton = new NetnsBaton(net, h1, { argv: ["init", "--ha", "--advertise-addr", h1.address, "--dns-addr", "127.0.0.1:0"], dataDir: fresh, startTimeoutMs: 40_000 });
      await baton.start();
      const svc = JSON.parse(await baton.cliOk("service", "inspect", "web")) as { spec: { task: { env: Record<string, string> } } }[];
      assert.equal(svc[0]!.spec.task.env.V, "2", "the restored store holds the service as it was");
      assert.equal((JSON.parse(await baton.cliOk("info", "--format", "json")) as { nodeId: string }).nodeId, id);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
