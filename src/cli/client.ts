import { request, type IncomingMessage, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import { readFileSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { verifyPeer } from "../ca/verify.js";
import { RevocationList } from "../ca/revocation.js";
import { systemClock } from "../lib/clock.js";
import { createParser } from "eventsource-parser";
import { join } from "node:path";
import { BatonError, type ErrorCode, type FieldProblem } from "../lib/errors.js";

/** Where the CLI reaches the API: the local socket, or a manager over mutual TLS. */
export type ApiTarget = { socketPath: string } | { host: string; port: number; ca: string; cert: string; key: string; certPath: string; /** Further managers, tried in turn when one cannot be reached. */ others?: { host: string; port: number }[] };

/** A manager that does not accept the connection within this is skipped for the next one. */
const CONNECT_TIMEOUT_MS = 3000;
/** Errors that mean the request never reached the manager: safe to send to another one. */
const UNREACHED = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ECONNRESET", "CONNECT_TIMEOUT"]);

/**
 * BATON_HOST / -H: unix:///path/baton.sock (like DOCKER_HOST), or tcp://MANAGER:4242 with the
 * client certificate in $BATON_CERT_PATH (ca.pem, cert.pem, key.pem; `baton cert create`).
 * Default: the default data dir's socket.
 */
export function targetOf(host: string | undefined, defaultDataDir: string): ApiTarget {
  const h = host ?? process.env.BATON_HOST;
  if (!h) return { socketPath: join(defaultDataDir, "baton.sock") };
  if (h.startsWith("unix://")) return { socketPath: h.slice("unix://".length) };
  if (h.startsWith("/")) return { socketPath: h };
  // tcp://m1:4242,m2:4242,m3 — several managers: the first that answers serves (HA).
  const hosts = h.startsWith("tcp://") ? h.slice("tcp://".length).replace(/\/$/, "").split(",") : [];
  const parsed = hosts.map((x) => /^(\[[^\]]+\]|[^:/,]+)(?::(\d+))?$/.exec(x.trim()));
  if (parsed.length === 0 || parsed.some((p) => !p)) throw new BatonError("BAD_REQUEST", `unsupported host "${h}": use unix:///path/to/baton.sock or tcp://MANAGER:4242[,MANAGER2:4242…]`);
  const ends = parsed.map((p) => ({ host: p![1]!.replace(/^\[|\]$/g, ""), port: Number(p![2] ?? 4242) }));
  const certPath = process.env.BATON_CERT_PATH ?? join(defaultDataDir, "client");
  const read = (f: string): string => {
    try {
      return readFileSync(join(certPath, f), "utf8");
    } catch {
      throw new BatonError("UNAUTHORIZED", `${h} needs a client certificate: ${join(certPath, f)} is missing (make one with \`baton cert create --out DIR\` on a manager, then set BATON_CERT_PATH=DIR)`);
    }
  };
  return { ...ends[0]!, ca: read("ca.pem"), cert: read("cert.pem"), key: read("key.pem"), certPath, ...(ends.length > 1 ? { others: ends.slice(1) } : {}) };
}

/** The socket path of a local target (for messages). */
export function socketPathOf(host: string | undefined, defaultDataDir: string): string {
  const t = targetOf(host, defaultDataDir);
  return "socketPath" in t ? t.socketPath : `tcp://${t.host}:${t.port}`;
}

type Method = "GET" | "POST" | "DELETE";

/**
 * The CLI's only way to the manager: the REST API. Plain node:http — the CLI makes a few
 * requests per run, and a smaller client keeps every command's start-up short.
 */
export class ApiClient {
  readonly target: ApiTarget;
  constructor(target: ApiTarget | string) {
    this.target = typeof target === "string" ? { socketPath: target } : target;
  }

  /** For messages: where this client talks to. */
  get address(): string {
    return "socketPath" in this.target ? `unix://${this.target.socketPath}` : `tcp://${this.target.host}:${this.target.port}`;
  }

  async call<T>(method: Method, path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, body);
    const text = await readAll(res);
    const json: unknown = text ? JSON.parse(text) : undefined;
    if ((res.statusCode ?? 500) >= 400) throw toError(json, res.statusCode ?? 500);
    return json as T;
  }

  /** A streaming GET (logs): calls onLine for each NDJSON line until the server ends it. */
  async stream(path: string, onLine: (line: string) => void, signal?: AbortSignal): Promise<void> {
    let buf = "";
    await this.readStream(path, signal, (text) => {
      buf += text;
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line) onLine(line);
      }
    });
  }

  /**
   * Server-sent events: calls onEvent with each parsed data payload. An `error` event (the
   * server ended the stream, e.g. SLOW_CONSUMER) is thrown as a BatonError carrying `resumeFrom`.
   */
  async events(query: string, onEvent: (data: unknown) => void, signal?: AbortSignal): Promise<void> {
    let failure: StreamError | undefined;
    const parser = createParser({
      onEvent: (e) => {
        if (failure) return;
        const data: unknown = JSON.parse(e.data);
        if (e.event === "error") failure = new StreamError(data as { code?: ErrorCode; message?: string; resumeFrom?: number });
        else onEvent(data);
      },
    });
    await this.readStream(`/v1/events${query}`, signal, (text) => parser.feed(text));
    if (failure) throw failure;
  }

  /**
   * Saves a binary GET (a store snapshot) to `file`: written to `file.part` (0600), fsynced,
   * then renamed, so `file` is whole or absent. Returns the byte count and the response headers.
   */
  async download(path: string, file: string): Promise<{ bytes: number; headers: IncomingMessage["headers"] }> {
    const res = await this.send("GET", path);
    if ((res.statusCode ?? 500) >= 400) throw toError(JSON.parse(await readAll(res)), res.statusCode ?? 500);
    const part = `${file}.part`;
    const fh = await open(part, "w", 0o600);
    let bytes = 0;
    try {
      for await (const chunk of res) {
        await fh.write(chunk as Buffer);
        bytes += (chunk as Buffer).length;
      }
      if (!res.complete) throw new BatonError("UNAVAILABLE", "baton closed the connection before the end of the download");
      await fh.sync();
    } catch (err) {
      await fh.close();
      await rm(part, { force: true });
      throw err instanceof BatonError ? err : new BatonError("UNAVAILABLE", `download failed: ${(err as Error).message}`, [], { cause: err });
    }
    await fh.close();
    await rename(part, file);
    return { bytes, headers: res.headers };
  }

  /** GET a long-lived response and hand over its text as it arrives, until the server ends it or signal aborts. */
  private async readStream(path: string, signal: AbortSignal | undefined, onText: (text: string) => void): Promise<void> {
    const res = await this.send("GET", path, undefined, signal);
    if ((res.statusCode ?? 500) >= 400) throw toError(JSON.parse(await readAll(res)), res.statusCode ?? 500);
    try {
      for await (const chunk of res) onText((chunk as Buffer).toString("utf8"));
    } catch (err) {
      if (!signal?.aborted) throw new BatonError("UNAVAILABLE", "baton closed the connection", [], { cause: err });
    }
  }

  /** Sends to the target; with several managers, to the next one when a manager cannot be reached. */
  private async send(method: Method, path: string, body?: unknown, signal?: AbortSignal): Promise<IncomingMessage> {
    const t = this.target;
    if ("socketPath" in t || !t.others?.length) return this.sendOnce(t, method, path, body, signal);
    const ends = [{ host: t.host, port: t.port }, ...t.others];
    let last: unknown;
    for (const [i, end] of ends.entries()) {
      try {
        const res = await this.sendOnce({ ...t, ...end }, method, path, body, signal);
        // Later requests of this run go to the manager that answered.
        if (i > 0) Object.assign(this.target, { ...end, others: ends.filter((_, j) => j !== i) });
        return res;
      } catch (err) {
        if (!(err instanceof UnreachedError)) throw err;
        last = err;
      }
    }
    throw new BatonError("UNAVAILABLE", `no manager answered (${ends.map((e) => `${e.host}:${e.port}`).join(", ")}): ${(last as Error).message}`);
  }

  private sendOnce(t: ApiTarget, method: Method, path: string, body?: unknown, signal?: AbortSignal): Promise<IncomingMessage> {
    const data = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const common: RequestOptions = {
        method,
        path,
        headers: data === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(data) },
        ...(signal ? { signal } : {}),
      };
      const req =
        "socketPath" in t
          ? request({ ...common, socketPath: t.socketPath }, resolve)
          : httpsRequest(
              {
                ...common,
                host: t.host,
                port: t.port,
                ca: [t.ca],
                cert: t.cert,
                key: t.key,
                minVersion: "TLSv1.3",
                // The manager is known by its certificate from the cluster CA, not by a DNS name.
                checkServerIdentity: (_h, cert) => {
                  try {
                    verifyPeer(cert, { caCertPem: t.ca, clock: systemClock, revocations: new RevocationList() }, { requireRole: "manager" });
                    return undefined;
                  } catch (e) {
                    return e instanceof Error ? e : new Error(String(e));
                  }
                },
              },
              resolve,
            );
      let handshaken = false;
      if (!("socketPath" in t)) {
        // A partitioned manager never refuses: give up on it after a while, before anything was sent.
        req.on("socket", (s) => {
          const timer = setTimeout(() => req.destroy(Object.assign(new Error(`${t.host}:${t.port} did not accept the connection within ${CONNECT_TIMEOUT_MS / 1000} s`), { code: "CONNECT_TIMEOUT" })), CONNECT_TIMEOUT_MS);
          s.once("secureConnect", () => {
            handshaken = true;
            clearTimeout(timer);
          });
          s.once("close", () => clearTimeout(timer));
        });
      }
      req.on("error", (err: NodeJS.ErrnoException) => {
        if (!("socketPath" in t) && err.code && UNREACHED.has(err.code) && !handshaken) {
          reject(new UnreachedError(`${t.host}:${t.port}: ${err.message}`));
        } else if (err.code === "ENOENT" || err.code === "ECONNREFUSED") {
          reject(new BatonError("UNAVAILABLE", `cannot reach baton at ${this.address}: is \`baton up\` running? (set BATON_HOST or -H)`));
        } else if (err.code === "EACCES") {
          reject(new BatonError("UNAVAILABLE", `permission denied on ${this.address} (the socket is 0600: run as its owner)`));
        } else if (err.name === "AbortError") {
          reject(err);
        } else {
          reject(new BatonError("UNAVAILABLE", `connection to baton failed: ${err.message}`));
        }
      });
      req.end(data);
    });
  }
}

/** The request never reached the manager (refused, unreachable, no handshake): another may serve it. */
class UnreachedError extends BatonError {
  constructor(message: string) {
    super("UNAVAILABLE", `cannot reach manager ${message}`, [], { retryable: true });
  }
}

/** The server ended a stream with an error event; `resumeFrom` says where to pick it up. */
export class StreamError extends BatonError {
  readonly resumeFrom: number | undefined;
  constructor(body: { code?: ErrorCode; message?: string; resumeFrom?: number }) {
    super(body.code ?? "INTERNAL", body.message ?? "the stream ended with an error", [], { retryable: body.resumeFrom !== undefined });
    this.resumeFrom = body.resumeFrom;
  }
}

async function readAll(res: IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of res) text += (chunk as Buffer).toString("utf8");
  return text;
}

function toError(json: unknown, status: number): BatonError {
  const j = (json ?? {}) as { code?: ErrorCode; message?: string; fields?: FieldProblem[] };
  return new BatonError(j.code ?? "INTERNAL", j.message ?? `HTTP ${status}`, j.fields ?? []);
}
