import http from "node:http";
import type { Socket } from "node:net";
import { Pool, type Dispatcher } from "undici";
import { closeServer, listen } from "../bind.js";
import type { ListenerDeps, ListenerHandle } from "../listener.js";
import type { BackendState, ServicePool } from "../pool.js";
import type { ListenerSpec } from "../types.js";
import { requestHeaders, responseHeaders } from "./headers.js";
import { retryOnConnectFailure, type RetryPolicy } from "./retry.js";

export interface HttpListenerOptions {
  /** @default retryOnConnectFailure */
  retry?: RetryPolicy;
}

/**
 * Upstream keep-alive pool for one backend. 4 s idle keep-alive: below Node's default server
 * keepAliveTimeout (5 s), so the mesh closes an idle socket before the app does and never
 * writes a request into a socket the app is closing.
 */
function upstreamOf(b: BackendState): Dispatcher {
  b.upstream ??= new Pool(`http://${b.host.includes(":") ? `[${b.host}]` : b.host}:${b.port}`, { connections: 128, pipelining: 1, keepAliveTimeout: 4000 });
  return b.upstream;
}

/**
 * L7: a node:http server in front of one undici Pool per backend. Bodies stream both ways with
 * backpressure (response: the upstream is paused while the client socket is full; request: the
 * IncomingMessage is the body stream undici reads).
 */
export async function listenHttp(spec: ListenerSpec, deps: ListenerDeps, opts: HttpListenerOptions = {}): Promise<ListenerHandle> {
  const pool = deps.pool(spec.serviceId);
  const retry = opts.retry ?? retryOnConnectFailure;
  const server = http.createServer({ noDelay: true, keepAliveTimeout: 5000 }, (req, res) => new Exchange(req, res, pool, deps, retry).start());
  server.on("clientError", (_err, socket) => socket.destroy());
  if (spec.admit) server.on("connection", (socket: Socket) => void (spec.admit!(socket.remoteAddress ?? "") || socket.destroy()));
  const port = await listen(server, spec);
  return {
    spec,
    port,
    close: async () => {
      await closeServer(server);
      server.closeIdleConnections();
    },
  };
}

/** Bodies up to this size that arrive in one chunk leave with the head in a single write. */
const SMALL_BODY = 16 * 1024;

const uncork = (res: http.ServerResponse): void => res.uncork();

/** One client request, through its attempts on one or more backends. */
class Exchange implements Dispatcher.DispatchHandler {
  private readonly startedAt: number;
  private readonly hasBody: boolean;
  private readonly headers: string[];
  /** Backends tried so far; a Set only once a retry needs one (most requests make one attempt). */
  private tried?: Set<BackendState>;
  private attempts = 0;
  private backend?: BackendState;
  private controller?: Dispatcher.DispatchController;
  private sent = false;
  private responded = false;
  private clientGone = false;
  private ended = false;
  private abort?: AbortController;
  /** The response's Content-Length (-1: none) and a small body held until the end. */
  private bodyLength = -1;
  private held?: Buffer;

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly pool: ServicePool,
    private readonly deps: ListenerDeps,
    private readonly retry: RetryPolicy,
  ) {
    this.startedAt = deps.clock.now();
    const h = req.headers;
    this.hasBody = (h["content-length"] !== undefined && h["content-length"] !== "0") || h["transfer-encoding"] !== undefined;
    this.headers = requestHeaders(req.rawHeaders, { remoteAddress: req.socket.remoteAddress ?? "", proto: "http" });
  }

  start(): void {
    this.res.once("close", () => {
      // The backend is released only once the response left for the client's socket, so that
      // drain() resolves after in-flight responses were delivered, not merely produced.
      if (this.ended) return this.done(false);
      if (this.res.writableFinished) return;
      this.clientGone = true;
      this.abort?.abort();
      this.controller?.abort(new Error("client closed the connection"));
    });
    this.next();
  }

  private next(): void {
    if (this.attempts === 1) this.tried = new Set([this.backend!]);
    const got = this.deps.acquire(this.pool, this.tried, this.signal());
    if (got === undefined || !(got instanceof Promise)) return this.send(got);
    got.then(
      (b) => this.send(b),
      (err: unknown) => this.fail(502, err),
    );
  }

  private signal(): AbortSignal | undefined {
    // Only waiting needs a signal: creating one per request would cost the fast path.
    if (this.pool.size > 0) return undefined;
    this.abort ??= new AbortController();
    return this.abort.signal;
  }

  private send(b: BackendState | undefined): void {
    if (this.clientGone) return;
    if (!b) return this.fail(this.attempts === 0 ? 503 : 502);
    this.backend = b;
    this.tried?.add(b);
    this.attempts++;
    this.sent = false;
    this.controller = undefined;
    b.acquire();
    const req = this.req;
    upstreamOf(b).dispatch({ path: req.url ?? "/", method: req.method as Dispatcher.HttpMethod, headers: this.headers, body: this.hasBody ? req : null }, this);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    this.sent = true;
    if (this.clientGone) controller.abort(new Error("client closed the connection"));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, parsed: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    this.responded = true;
    if (statusCode >= 500) this.backend!.serverErrors++;
    const cl = parsed["content-length"];
    this.bodyLength = typeof cl === "string" ? Number(cl) : -1;
    const raw = controller.rawHeaders;
    const headers = Array.isArray(raw) ? responseHeaders(raw) : [];
    // Without a Content-Length the body goes chunked, and head, chunks and the terminating
    // chunk usually arrive from one upstream read: cork so they leave in one writev instead of
    // several syscalls. With a Content-Length node:http already sends the head with the first
    // body write (and end() adds nothing), so the cork and its tick would be pure cost.
    if (this.bodyLength < 0) {
      this.res.cork();
      process.nextTick(uncork, this.res);
    }
    if (statusMessage) this.res.writeHead(statusCode, statusMessage, headers);
    else this.res.writeHead(statusCode, headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (chunk.length === this.bodyLength && chunk.length <= SMALL_BODY) {
      // The whole (small) body in one chunk: keep it for end(), which then sends head and body
      // in one write instead of a writev of two buffers.
      this.held = chunk;
      return;
    }
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once("drain", () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.ended = true;
    // latin1 maps bytes 1:1, so the body goes out unchanged; node:http then prepends the
    // head to this string and writes both at once.
    if (this.held) this.res.end(this.held.toString("latin1"), "latin1");
    else this.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const b = this.backend!;
    this.done(true);
    if (this.clientGone) return;
    if (!this.responded) b.eject(this.deps.clock.now());
    const outcome = { method: this.req.method ?? "GET", hasBody: this.hasBody, sent: this.sent, responded: this.responded, attempts: this.attempts, error: err };
    if (this.retry(outcome)) return this.next();
    if (this.responded || this.res.headersSent) this.res.destroy(err);
    else this.fail(502, err);
  }

  private done(failed: boolean): void {
    const b = this.backend!;
    if (failed) b.errors++;
    else b.latency.record(this.deps.clock.now() - this.startedAt);
    b.release();
  }

  private fail(status: 502 | 503, err?: unknown): void {
    if (this.res.headersSent || this.clientGone) return void this.res.destroy();
    if (err) this.deps.log.debug({ err, serviceId: this.pool.serviceId }, "request failed");
    const body = status === 503 ? "no ready backend\n" : "backend unavailable\n";
    this.res.writeHead(status, { "content-type": "text/plain", "content-length": Buffer.byteLength(body) });
    this.res.end(body);
  }
}
