import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { allocateVip, discoveryVariables, envPrefix, MESH_ADDRESS, serviceEnv } from "./service-address.js";

test("discovery variables: host, first port, and one per target, for services with an address", () => {
  assert.deepEqual(discoveryVariables([{ name: "my-api", vip: "127.77.3.4", targets: [80, 443] }, { name: "worker", targets: [] }]), {
    MY_API_SERVICE_HOST: "127.77.3.4",
    MY_API_SERVICE_PORT: "80",
    MY_API_SERVICE_PORT_80: "80",
    MY_API_SERVICE_PORT_443: "443",
  });
});

test("env names are Kubernetes-style: uppercase, non-alphanumerics become _", () => {
  assert.deepEqual(serviceEnv("web", "127.77.0.5", 80), { WEB_SERVICE_HOST: "127.77.0.5", WEB_SERVICE_PORT: "80" });
  assert.equal(envPrefix("my-api.v2"), "MY_API_V2");
  assert.equal(envPrefix("9lives"), "_9LIVES");
});

test("a service's VIP is stable, in 127.77.0.0/16, and avoids addresses in use", () => {
  const a = allocateVip("web", new Set());
  assert.equal(allocateVip("web", new Set()), a, "same name, same address");
  assert.match(a, /^127\.77\.\d+\.\d+$/);
  const b = allocateVip("web", new Set([a]));
  assert.notEqual(b, a);
  assert.match(b, /^127\.77\./);
  assert.notEqual(allocateVip("api", new Set()), a);
});

test("a VIP never ends in .0 or .255, is never the mesh's own address, and the allocator reports a full range", () => {
  const range = { base: (127 << 24) | (77 << 16), size: 256 };
  const used = new Set<string>();
  // 256 addresses less .0, .255 and 127.77.0.1 (the mesh's DNS responder).
  for (let i = 0; i < 253; i++) used.add(allocateVip(`s${i}`, used, range));
  assert.ok(![...used].some((ip) => ip.endsWith(".0") || ip.endsWith(".255")));
  assert.ok(!used.has(MESH_ADDRESS));
  assert.throws(() => allocateVip("one-more", used, range), /no free service address/);
});

test("a VIP can be bound on Linux without configuration (127.0.0.0/8 is loopback)", async () => {
  const vip = allocateVip("bind-check", new Set());
  const server = net.createServer((s) => s.end("ok"));
  await new Promise<void>((r) => server.listen(0, vip, r));
  const port = (server.address() as net.AddressInfo).port;
  const got = await new Promise<string>((resolve, reject) => {
    const c = net.connect(port, vip);
    let d = "";
    c.on("data", (x: Buffer) => (d += x.toString()));
    c.on("end", () => resolve(d));
    c.on("error", reject);
  });
  await new Promise((r) => server.close(r));
  assert.equal(got, "ok");
});
