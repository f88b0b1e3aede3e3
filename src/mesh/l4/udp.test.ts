import { after, test } from "node:test";
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { once } from "node:events";
import { testMesh } from "../../../test/harness/mesh-backends.js";

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function echoServer(tag: string): Promise<number> {
  const s = dgram.createSocket("udp4");
  s.on("message", (m, r) => s.send(Buffer.concat([Buffer.from(`${tag}:`), m]), r.port, r.address));
  s.bind(0, "127.0.0.1");
  await once(s, "listening");
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return s.address().port;
}

test("UDP datagrams go through the mesh and replies come back to the client", async () => {
  const mesh = testMesh();
  cleanups.push(() => mesh.close());
  mesh.setBackends("dns-like", [{ id: "u1", host: "127.0.0.1", port: await echoServer("u1") }]);
  assert.deepEqual(await mesh.setListeners([{ key: "u", serviceId: "dns-like", host: "127.0.0.1", port: 0, protocol: "udp" }]), []);
  const client = dgram.createSocket("udp4");
  cleanups.push(() => new Promise<void>((r) => client.close(() => r())));
  client.send("one", mesh.port("u")!, "127.0.0.1");
  const [first] = (await once(client, "message")) as [Buffer];
  client.send("two", mesh.port("u")!, "127.0.0.1");
  const [second] = (await once(client, "message")) as [Buffer];
  assert.deepEqual([first.toString(), second.toString()], ["u1:one", "u1:two"]);
  const stats = mesh.stats().find((s) => s.serviceId === "dns-like")!;
  assert.deepEqual(stats.backends.map((b) => [b.id, b.requests, b.active]), [["u1", 1, 1]], "one session for one client address");
});
