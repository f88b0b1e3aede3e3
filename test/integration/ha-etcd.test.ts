// The managed etcd of HA managers (src/ha) on three hosts: real etcd members in network
// namespaces, peer and client TLS from the etcd CA, members joined as learners and promoted, the
// store through any member, kill -9 of a member's etcd (restarted by its supervisor, rejoins),
// a member leaving. Each member is driven by test/fixtures/ha-member.ts inside its namespace.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { ChildProcess } from "node:child_process";
import { ROOT, waitFor } from "../harness/baton.js";
import { etcdUnavailable } from "../harness/etcd.js";
import { createTestNetwork, netnsSkipReason, type TestHost, type TestNetwork } from "../harness/netns.js";
import { etcdCaDir, saveEtcdCa } from "../../src/ha/etcd-pki.js";
import type { MemberStatus } from "../../src/ha/membership.js";
import { removedMemberDirs } from "../../src/ha/managed-etcd.js";
import { systemClock } from "../../src/lib/clock.js";

const FIXTURE = join(ROOT, "test", "fixtures", "ha-member.ts");

/** One ha-member.ts process in a namespace, and a request/answer channel to it. */
class Member {
  private lines: string[] = [];
  private waiting: ((line: string) => void)[] = [];
  private seq = 0;
  output = "";
  constructor(
    readonly host: TestHost,
    readonly dataDir: string,
    readonly proc: ChildProcess,
  ) {
    proc.stderr!.on("data", (d: Buffer) => {
      this.output += d.toString();
      if (this.output.length > 100_000) this.output = this.output.slice(-50_000);
    });
    createInterface({ input: proc.stdout! }).on("line", (l) => {
      const w = this.waiting.shift();
      if (w) w(l);
      else this.lines.push(l);
    });
  }
  next(timeoutMs = 60_000): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no answer from the member in ${this.host.name}; its output:\n${this.output.slice(-3000)}`)), timeoutMs);
      this.waiting.push((line) => {
        clearTimeout(t);
        resolve(line);
      });
    });
  }
  async call<T>(op: string, args: Record<string, string> = {}): Promise<T> {
    const id = String(++this.seq);
    this.proc.stdin!.write(JSON.stringify({ id, op, ...args }) + "\n");
    const r = JSON.parse(await this.next()) as { ok: boolean; result: T; error?: string };
    if (!r.ok) throw new Error(`${op} in ${this.host.name}: ${r.error}`);
    return r.result;
  }
}

const skip = netnsSkipReason() ?? etcdUnavailable();

describe("managed etcd on three hosts (TLS, learners, supervisor)", { skip }, () => {
  let net: TestNetwork;
  const members: Member[] = [];
  const dirs: string[] = [];

  async function startMember(i: number, mode: "init" | "join", existing: string[] = []): Promise<Member> {
    const host = net.hosts[i]!;
    const dataDir = dirs[i]!;
    const opts = { mode, dataDir, name: `m${i + 1}`, advertise: host.address, existing };
    const proc = net.spawn(host, process.execPath, ["--import", "tsx", FIXTURE, JSON.stringify(opts)], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
    const m = new Member(host, dataDir, proc);
    const first = JSON.parse(await m.next()) as { ready: boolean; error?: string };
    assert.ok(first.ready, `member ${opts.name} did not start: ${first.error}\n${m.output.slice(-3000)}`);
    members[i] = m;
    return m;
  }

  before(async () => {
    net = await createTestNetwork({ hosts: 3, prefix: "ha" });
    for (let i = 0; i < 3; i++) dirs.push(mkdtempSync(join(tmpdir(), "baton-ha-")));
  });
  after(async () => {
    for (const m of members) m?.proc.stdin?.end();
    await Promise.all(members.map((m) => m && new Promise((r) => (m.proc.exitCode !== null ? r(undefined) : m.proc.once("exit", r)))).map((p) => Promise.race([p, new Promise((r) => setTimeout(r, 15_000))])));
    await net?.destroy();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test("member 1 starts a cluster; members 2 and 3 join it as learners and become voters", async () => {
    const m1 = await startMember(0, "init");
    // The joining managers were handed the etcd CA (as a manager join hands over the CA key).
    const caCert = readFileSync(join(etcdCaDir(dirs[0]!), "ca.crt"), "utf8");
    const caKey = readFileSync(join(etcdCaDir(dirs[0]!), "ca.key"), "utf8");
    for (const d of dirs.slice(1)) await saveEtcdCa(d, caCert, caKey, systemClock);
    const url1 = `https://${net.hosts[0]!.address}:2379`;
    await startMember(1, "join", [url1]);
    const m3 = await startMember(2, "join", [url1, `https://${net.hosts[1]!.address}:2379`]);
    const list = await m3.call<MemberStatus[]>("members");
    assert.deepEqual(list.map((m) => m.name).sort(), ["m1", "m2", "m3"]);
    for (const m of list) {
      assert.equal(m.isLearner, false, `${m.name} still a learner`);
      assert.equal(m.healthy, true, `${m.name}: ${m.error}`);
      assert.match(m.clientUrls[0]!, /^https:\/\/10\.231\.\d+\.\d+:2379$/);
    }
    assert.equal(list.filter((m) => m.leader).length, 1);
    // Only TLS with a certificate of the etcd CA gets in: plain http is refused.
    const plain = await net.exec(net.hosts[1]!, "curl", ["-s", "-m", "3", `http://${net.hosts[0]!.address}:2379/health`]);
    assert.notEqual(plain.stdout.trim(), '{"health":"true"}');
    const noCert = await net.exec(net.hosts[1]!, "curl", ["-s", "-m", "3", "--cacert", join(etcdCaDir(dirs[0]!), "ca.crt"), `${url1}/health`]);
    assert.notEqual(noCert.code, 0, "a client without a certificate was let in");
    void m1;
  });

  test("the store works through any member: a write through one is read through the others", async () => {
    for (const [i, name] of ["alpha", "beta", "gamma"].entries()) await members[i]!.call("create", { name });
    for (const m of members)
      await waitFor(async () => (await m.call<string[]>("names")).join(",") === "alpha,beta,gamma", 10_000, `all three services seen through ${m.host.name}`);
  });

  test("kill -9 of a member's etcd: its supervisor restarts it and it rejoins the cluster", async () => {
    const m2 = members[1]!;
    const before = await m2.call<{ pid: number; restarts: number }>("status");
    process.kill(before.pid, "SIGKILL");
    const after = await waitFor(
      async () => {
        const s = await m2.call<{ pid: number | null; restarts: number }>("status");
        return s.pid !== null && s.pid !== before.pid && s.restarts >= 1 ? s : undefined;
      },
      20_000,
      () => `etcd in h2 restarted (was pid ${before.pid}); output:\n${m2.output.slice(-2000)}`,
    );
    assert.equal(after.restarts, before.restarts + 1);
    await waitFor(async () => (await m2.call<MemberStatus[]>("members").catch(() => [])).filter((m) => m.healthy).length === 3, 20_000, "all three members healthy again");
    await m2.call("create", { name: "delta" });
    await waitFor(async () => (await members[0]!.call<string[]>("names")).includes("delta"), 10_000, "delta (written through the restarted member) seen through h1");
  });

  test("a member leaves: removed from the cluster, its data moved aside; the two others carry on", async () => {
    const m3 = members[2]!;
    await m3.call("leave");
    const list = await members[0]!.call<MemberStatus[]>("members");
    assert.deepEqual(list.map((m) => m.name).sort(), ["m1", "m2"]);
    assert.ok(list.every((m) => m.healthy));
    assert.throws(() => readFileSync(join(dirs[2]!, "etcd", "member.json")), /ENOENT/);
    const aside = removedMemberDirs(dirs[2]!);
    assert.equal(aside.length, 1, "DIR/etcd moved to DIR/etcd.removed-<time>");
    assert.ok(readFileSync(join(aside[0]!, "member.json"), "utf8").includes('"name": "m3"'));
    await members[1]!.call("create", { name: "epsilon" });
    await waitFor(async () => (await members[0]!.call<string[]>("names")).includes("epsilon"), 10_000, "epsilon seen through h1");
    // The last-member guard: m1 cannot remove m2 and then itself.
    await assert.rejects(members[0]!.call("remove", { member: "nobody" }), /no etcd member named nobody/);
  });
});

