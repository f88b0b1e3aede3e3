// The network-namespace harness (test/harness/netns.ts) that the multi-node (#10) and HA (#11)
// tests build on: 3 hosts on a bridge, partition/heal, a real baton inside a host, nothing left
// behind. Traffic goes only to the test subnet's addresses and each namespace's loopback.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { HELLO, waitFor, type PsRow } from "../harness/baton.js";
import { NetnsBaton, createTestNetwork, httpGetFrom, netnsSkipReason, type TestNetwork } from "../harness/netns.js";

const running = (rows: PsRow[]): PsRow[] => rows.filter((r) => r.DesiredState === "running" && r.CurrentState === "running");
const ipOut = (...args: string[]): string => spawnSync("ip", args, { encoding: "utf8" }).stdout;

// A tiny HTTP server on one address, given as argv[1]; prints "ready" once listening.
const SERVER = `require("http").createServer((q,s)=>s.end("pong from "+process.argv[1])).listen(8080,process.argv[1],()=>console.log("ready"))`;

describe("netns harness: 3 hosts on a bridge", { skip: netnsSkipReason() }, () => {
  let net: TestNetwork;
  before(async () => {
    net = await createTestNetwork({ hosts: 3 });
  });
  after(() => net?.destroy());

  test("3 hosts with unique short names and addresses in one private /24", () => {
    assert.match(net.subnet, /^10\.231\.\d+\.0\/24$/);
    assert.deepEqual(net.hosts.map((h) => h.name), ["h1", "h2", "h3"]);
    const base = net.subnet.replace(/\.0\/24$/, "");
    assert.deepEqual(net.hosts.map((h) => h.address), [`${base}.11`, `${base}.12`, `${base}.13`]);
    for (const h of net.hosts) assert.ok(h.bridgePort.length <= 15, h.bridgePort);
    const listed = ipOut("netns", "list");
    for (const ns of net.namespaces) assert.match(listed, new RegExp(`^${ns}\\b`, "m"));
    // Nothing in the root namespace: no veth, no bridge, no route to the test subnet.
    assert.doesNotMatch(ipOut("link"), new RegExp(net.id));
    assert.doesNotMatch(ipOut("route"), new RegExp(net.subnet.replace(/\.0\/24$/, "")));
  });

  test("a host reaches nothing but the test subnet and its loopback", async () => {
    const r = await net.exec("h1", "ip", ["-4", "route"]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /default/);
    const lo = await net.exec("h1", "ip", ["-br", "link", "show", "lo"]);
    assert.match(lo.stdout, /UNKNOWN|UP/);
  });

  test("h1 reaches an HTTP server in h2; partition(h2) cuts it off, heal(h2) brings it back", async () => {
    const [h1, h2] = [net.hosts[0]!, net.hosts[1]!];
    const server = net.spawn(h2, process.execPath, ["-e", SERVER, h2.address]);
    let out = "";
    server.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    server.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    await waitFor(() => out.includes("ready"), 5000, () => `the server in h2 listening; output: ${out}`);
    const url = `http://${h2.address}:8080/`;

    assert.equal(await waitFor(() => httpGetFrom(net, h1, url), 5000, `${url} answering from h1`), `pong from ${h2.address}`);

    await net.partition(h2);
    assert.equal(await net.isPartitioned(h2), true);
    await waitFor(async () => (await httpGetFrom(net, h1, url, 500)) === undefined, 5000, `${url} unreachable from h1 after partition(h2)`);
    // h2 still answers itself: only the link is cut.
    assert.equal(await httpGetFrom(net, h2, url), `pong from ${h2.address}`);

    await net.heal(h2);
    assert.equal(await waitFor(() => httpGetFrom(net, h1, url, 500), 5000, `${url} answering from h1 after heal(h2)`), `pong from ${h2.address}`);
    server.kill("SIGKILL");
  });

  test("baton up inside h3 answers its CLI, and a 2-replica service answers on its PORTs inside h3", async () => {
    const h3 = net.hosts[2]!;
    const baton = new NetnsBaton(net, h3, { argv: ["up"] });
    try {
      await baton.start();
      assert.match(await baton.cliOk("node", "ls"), /^ID\s+HOSTNAME/m);
      await baton.cliOk("service", "create", "--name", "hello", "--replicas", "2", "-e", "GREETING=hi", "node", HELLO);
      const rows = await waitFor(async () => {
        const rs = running(await baton.tasks("hello"));
        return rs.length === 2 && rs.every((r) => r.Port) && rs;
      }, 10_000, "2 running tasks of hello with ports");
      for (const r of rows) {
        // The tasks run in h3's namespace: their PORT answers there, on loopback and on h3's address.
        for (const addr of ["127.0.0.1", h3.address]) {
          const body = await waitFor(() => httpGetFrom(net, h3, `http://${addr}:${r.Port}/`), 5000, `${r.Name} answering on ${addr}:${r.Port} in h3`);
          assert.match(body, new RegExp(`^hi from hello\\.${r.Slot} pid ${r.Pid}`));
        }
      }
      // The task processes really are in h3's namespace.
      const pids = ipOut("netns", "pids", h3.ns).split(/\s+/).filter(Boolean).map(Number);
      for (const r of rows) assert.ok(pids.includes(r.Pid!), `task pid ${r.Pid} in ${h3.ns}`);
      assert.ok(pids.includes(baton.pid), `baton pid ${baton.pid} in ${h3.ns}`);

      // kill -9 of the host's baton; its tasks keep running (they are its children in their own groups).
      await baton.kill("SIGKILL");
      assert.equal(baton.running, false);
    } finally {
      await baton.destroy();
    }
    assert.equal(existsSync(baton.dataDir), false);
  });

  test("destroy() leaves no namespace, veth or bridge behind, and is idempotent", async () => {
    const leftover = net.spawn("h1", "sleep", ["600"]);
    const names = net.namespaces;
    await net.destroy();
    await net.destroy();
    await waitFor(() => leftover.exitCode !== null || leftover.signalCode !== null, 5000, "the process spawned in h1 killed");
    const listed = ipOut("netns", "list");
    for (const ns of names) assert.doesNotMatch(listed, new RegExp(`^${ns}\\b`, "m"));
    assert.doesNotMatch(ipOut("link"), new RegExp(net.id));
  });
});
