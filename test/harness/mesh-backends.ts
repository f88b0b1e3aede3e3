// Test support for the mesh's socket tests: real backends on 127.0.0.1 port 0, a client that
// counts who answered, and condition waits with deadlines (no sleeps).
import http from "node:http";
import { waitFor as waitForCondition } from "./baton.js";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { systemClock, type Clock } from "../../src/lib/clock.js";
import { silentLogger } from "../../src/lib/log.js";
import { Mesh } from "../../src/mesh/mesh.js";
import type { Backend } from "../../src/mesh/types.js";

export interface TestBackend {
  name: string;
  port: number;
  backend: Backend;
  /** Requests seen (HTTP) or connections accepted (TCP). */
  hits: number;
  /** Last request's headers (HTTP). */
  lastHeaders?: http.IncomingHttpHeaders;
  /** Like kill -9: stop listening and reset every open connection. */
  kill(): void;
  close(): Promise<void>;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, b: TestBackend) => void;

/** Answers its name (after reading the body, echoed back when there is one). */
const nameHandler: Handler = (req, res, b) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = chunks.length ? Buffer.concat(chunks) : Buffer.from(b.name);
    res.writeHead(200, { "content-type": "text/plain", "content-length": body.length });
    res.end(body);
  });
};

export async function startHttpBackend(name: string, handler: Handler = nameHandler): Promise<TestBackend> {
  const sockets = new Set<net.Socket>();
  const b = { name, hits: 0 } as TestBackend;
  const server = http.createServer((req, res) => {
    b.hits++;
    b.lastHeaders = req.headers;
    handler(req, res, b);
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  b.port = (server.address() as AddressInfo).port;
  b.backend = { id: name, host: "127.0.0.1", port: b.port };
  b.kill = () => {
    server.close();
    for (const s of sockets) s.resetAndDestroy();
  };
  b.close = async () => {
    b.kill();
    await new Promise((r) => setImmediate(r));
  };
  return b;
}

/** A TCP backend that writes its name on connect, then echoes. */
export async function startTcpBackend(name: string): Promise<TestBackend> {
  const sockets = new Set<net.Socket>();
  const b = { name, hits: 0 } as TestBackend;
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    b.hits++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    s.write(`${name}\n`);
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  b.port = (server.address() as AddressInfo).port;
  b.backend = { id: name, host: "127.0.0.1", port: b.port };
  b.kill = () => {
    server.close();
    for (const s of sockets) s.resetAndDestroy();
  };
  b.close = async () => b.kill();
  return b;
}

export function testMesh(clock: Clock = systemClock): Mesh {
  return new Mesh({ clock, log: silentLogger() });
}

export interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

/** One HTTP request through `agent` (keep-alive by default); rejects on socket errors. */
export function request(port: number, opts: { method?: string; path?: string; headers?: http.OutgoingHttpHeaders; body?: string | Buffer; agent?: http.Agent } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: opts.method ?? "GET", path: opts.path ?? "/", headers: opts.headers, agent: opts.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** Waits until cond() is true (the harness's waitFor, polling every 5 ms); fails naming `what`. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  await waitForCondition(cond, timeoutMs, what, 5);
}

/** Connects to port, writes `send`, half-closes, resolves everything received until the server closes. */
export function tcpExchange(port: number, send: string, host = "127.0.0.1"): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, allowHalfOpen: true });
    let got = "";
    s.on("data", (d: Buffer) => (got += d.toString()));
    s.on("end", () => {
      s.end();
      resolve(got);
    });
    s.on("error", reject);
    s.on("connect", () => s.end(send));
  });
}
