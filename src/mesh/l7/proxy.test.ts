import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { systemClock } from "../../lib/clock.js";
import { silentLogger } from "../../lib/log.js";
import { Mesh } from "../mesh.js";
import { request, startHttpBackend, testMesh, waitFor, type TestBackend } from "../../../test/harness/mesh-backends.js";

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  agent.destroy();
});

let serviceSeq = 0;
/** A mesh with one HTTP listener on port 0 for a fresh service; returns the port. */
async function meshWithListener(mesh: Mesh = testMesh()): Promise<{ mesh: Mesh; port: number; service: string }> {
  const service = `svc${++serviceSeq}`;
  const errors = await mesh.setListeners([{ key: service, serviceId: service, host: "127.0.0.1", port: 0, protocol: "http" }]);
  assert.deepEqual(errors, []);
  cleanups.push(() => mesh.close());
  return { mesh, port: mesh.port(service)!, service };
}

async function backends(n: number, prefix: string): Promise<TestBackend[]> {
  const bs = await Promise.all(Array.from({ length: n }, (_, i) => startHttpBackend(`${prefix}${i}`)));
  cleanups.push(() => Promise.all(bs.map((b) => b.close())).then(() => {}));
  return bs;
}

describe("L7 proxy", () => {
  test("4 backends each get 25% ± 10 points of 400 requests", async () => {
    const { mesh, port, service } = await meshWithListener();
    const bs = await backends(4, "even");
    mesh.setBackends(service, bs.map((b) => b.backend));
    for (let i = 0; i < 400; i++) assert.equal((await request(port, { agent })).status, 200);
    for (const b of bs) assert.ok(Math.abs(b.hits / 400 - 0.25) <= 0.1, `${b.name} got ${b.hits}`);
    const stats = mesh.stats().find((s) => s.serviceId === service)!;
    assert.equal(stats.backends.reduce((n, b) => n + b.requests, 0), 400);
    assert.ok(stats.backends.every((b) => b.p99Ms !== undefined && b.active === 0));
  });

  test("X-Forwarded-For is appended, Proto and Host set, hop-by-hop headers are not forwarded", async () => {
    const { mesh, port, service } = await meshWithListener();
    const [b] = await backends(1, "hdr");
    mesh.setBackends(service, [b!.backend]);
    const res = await request(port, { agent, headers: { "x-forwarded-for": "10.0.0.1", connection: "keep-alive, x-hop", "x-hop": "secret", te: "trailers", "keep-alive": "timeout=5", "proxy-authorization": "Basic x", "x-kept": "yes" } });
    assert.equal(res.status, 200);
    const h = b!.lastHeaders!;
    assert.equal(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
    assert.equal(h["x-forwarded-proto"], "http");
    assert.equal(h["x-forwarded-host"], `127.0.0.1:${port}`);
    assert.equal(h.host, `127.0.0.1:${port}`, "the client's Host is kept");
    assert.equal(h["x-kept"], "yes");
    for (const gone of ["x-hop", "te", "keep-alive", "proxy-authorization"]) assert.equal(h[gone], undefined, `${gone} forwarded`);
  });

  test("a POST body streams through both ways (1 MiB, chunked)", async () => {
    const { mesh, port, service } = await meshWithListener();
    const [b] = await backends(1, "post");
    mesh.setBackends(service, [b!.backend]);
    const body = Buffer.alloc(1 << 20, "x");
    const res = await new Promise<{ status: number; length: number }>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, method: "POST", agent }, (r) => {
        let length = 0;
        r.on("data", (c: Buffer) => (length += c.length));
        r.on("end", () => resolve({ status: r.statusCode!, length }));
      });
      req.on("error", reject);
      // No content-length: the request goes chunked, in several writes.
      for (let i = 0; i < 16; i++) req.write(body.subarray(i * 65536, (i + 1) * 65536));
      req.end();
    });
    assert.deepEqual(res, { status: 200, length: body.length });
  });

  test("killing one of 4 backends under GET load fails no request", async () => {
    const { mesh, port, service } = await meshWithListener();
    const bs = await backends(4, "kill");
    mesh.setBackends(service, bs.map((b) => b.backend));
    const loadAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    cleanups.push(() => loadAgent.destroy());
    let ok = 0;
    const failures: string[] = [];
    const end = Date.now() + 3000;
    const worker = async (): Promise<void> => {
      while (Date.now() < end) {
        try {
          const r = await request(port, { agent: loadAgent });
          if (r.status === 200) ok++;
          else failures.push(`status ${r.status}`);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, worker));
    await waitFor(() => ok > 500, "500 requests before the kill");
    bs[1]!.kill();
    const hitsAtKill = bs[1]!.hits;
    await load;
    assert.deepEqual(failures, []);
    assert.equal(bs[1]!.hits, hitsAtKill, "nothing reached the killed backend");
    assert.ok(ok > 1000, `only ${ok} requests in 3 s`);
  });

  test("drain: the in-flight slow request completes, nothing new reaches the backend, drain resolves after it", async () => {
    const { mesh, port, service } = await meshWithListener();
    const events: string[] = [];
    const slow = await startHttpBackend("slow", (_req, res, b) =>
      setTimeout(() => {
        events.push("slow backend answered");
        res.end(b.name);
      }, 500),
    );
    const [fast] = await backends(1, "fast");
    cleanups.push(() => slow.close());
    mesh.setBackends(service, [slow.backend]);
    const inFlight = request(port, { agent });
    await waitFor(() => slow.hits === 1, "the slow request to reach the slow backend");
    mesh.setBackends(service, [slow.backend, fast!.backend]);
    const drained = mesh.drain("slow", 10_000).then((r) => events.push(`drain resolved ${JSON.stringify(r)}`));
    for (let i = 0; i < 10; i++) assert.equal((await request(port, { agent })).body, "fast0");
    const [r] = await Promise.all([inFlight, drained]);
    assert.deepEqual([r.status, r.body], [200, "slow"]);
    assert.equal(slow.hits, 1, "no new request reached the drained backend");
    assert.deepEqual(events, ["slow backend answered", 'drain resolved {"drained":true,"closedConnections":0}']);
  });

  test("drain: at the deadline what is left is closed and counted", async () => {
    const { mesh, port, service } = await meshWithListener();
    const stuck = await startHttpBackend("stuck", () => {});
    const [fast] = await backends(1, "rescue");
    cleanups.push(() => stuck.close());
    mesh.setBackends(service, [stuck.backend]);
    const inFlight = request(port, { agent }).catch((err: Error) => err);
    await waitFor(() => stuck.hits === 1, "the request to reach the stuck backend");
    mesh.setBackends(service, [stuck.backend, fast!.backend]);
    assert.deepEqual(await mesh.drain("stuck", 100), { drained: false, closedConnections: 1 });
    // The cut GET had no response byte yet: it is retried on the remaining backend.
    const r = await inFlight;
    assert.ok(!(r instanceof Error), String(r));
    assert.equal(r.body, "rescue0");
  });

  test("with no backend a request waits, and succeeds when one is added 300 ms later", async () => {
    const service = `svc${++serviceSeq}`;
    const [b] = await backends(1, "late");
    const mesh = new Mesh({ clock: systemClock, log: silentLogger(), onWaiting: () => void setTimeout(() => mesh.setBackends(service, [b!.backend]), 300) });
    await mesh.setListeners([{ key: service, serviceId: service, host: "127.0.0.1", port: 0, protocol: "http" }]);
    cleanups.push(() => mesh.close());
    const t0 = Date.now();
    const r = await request(mesh.port(service)!, { agent });
    assert.equal(r.status, 200);
    assert.equal(r.body, "late0");
    assert.ok(Date.now() - t0 >= 290, "answered before the backend existed?");
  });

  test("with no backend the wait expires with 503 after waitForBackendMs", async () => {
    const { mesh, port, service } = await meshWithListener();
    mesh.setPolicy(service, { waitForBackendMs: 150 });
    const r = await request(port, { agent });
    assert.equal(r.status, 503);
    assert.equal(r.body, "no ready backend\n");
  });

  test("weights 9 and 1 split L7 requests about 90/10", async () => {
    const { mesh, port, service } = await meshWithListener();
    const [stable, canary] = await backends(2, "w");
    mesh.setBackends(service, [{ ...stable!.backend, weight: 9 }, { ...canary!.backend, weight: 1 }]);
    for (let i = 0; i < 200; i++) await request(port, { agent });
    assert.equal(canary!.hits, 20);
  });
});
