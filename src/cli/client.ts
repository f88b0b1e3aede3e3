import { Client, type Dispatcher } from "undici";
import { createParser } from "eventsource-parser";
import { join } from "node:path";
import { BatonError, type ErrorCode, type FieldProblem } from "../lib/errors.js";

/** BATON_HOST / -H: unix:///path/baton.sock (like DOCKER_HOST); default the default data dir's socket. */
export function socketPathOf(host: string | undefined, defaultDataDir: string): string {
  const h = host ?? process.env.BATON_HOST;
  if (!h) return join(defaultDataDir, "baton.sock");
  if (h.startsWith("unix://")) return h.slice("unix://".length);
  if (h.startsWith("/")) return h;
  throw new BatonError("BAD_REQUEST", `unsupported host "${h}": use unix:///path/to/baton.sock`);
}

/** The CLI's only way to the manager: the REST API. */
export class ApiClient {
  private readonly client: Client;

  constructor(readonly socketPath: string) {
    this.client = new Client("http://baton", { socketPath, bodyTimeout: 0, headersTimeout: 30_000 });
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  async call<T>(method: Dispatcher.HttpMethod, path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, body);
    const text = await res.body.text();
    const json: unknown = text ? JSON.parse(text) : undefined;
    if (res.statusCode >= 400) throw toError(json, res.statusCode);
    return json as T;
  }

  /** A streaming GET (logs): calls onLine for each NDJSON line until the server ends it. */
  async stream(path: string, onLine: (line: string) => void, signal?: AbortSignal): Promise<void> {
    const res = await this.send("GET", path, undefined, signal);
    if (res.statusCode >= 400) throw toError(JSON.parse(await res.body.text()), res.statusCode);
    let buf = "";
    try {
      for await (const chunk of res.body) {
        buf += (chunk as Buffer).toString("utf8");
        let i: number;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line) onLine(line);
        }
      }
    } catch (err) {
      if (!signal?.aborted) throw err;
    }
  }

  /** Server-sent events: calls onEvent with each parsed data payload. */
  async events(query: string, onEvent: (data: unknown) => void, signal?: AbortSignal): Promise<void> {
    const res = await this.send("GET", `/v1/events${query}`, undefined, signal);
    if (res.statusCode >= 400) throw toError(JSON.parse(await res.body.text()), res.statusCode);
    const parser = createParser({ onEvent: (e) => onEvent(JSON.parse(e.data)) });
    try {
      for await (const chunk of res.body) parser.feed((chunk as Buffer).toString("utf8"));
    } catch (err) {
      if (!signal?.aborted) throw err;
    }
  }

  private async send(method: Dispatcher.HttpMethod, path: string, body?: unknown, signal?: AbortSignal): Promise<Dispatcher.ResponseData> {
    try {
      return await this.client.request({
        method,
        path,
        ...(body !== undefined ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } } : {}),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ECONNREFUSED") {
        throw new BatonError("UNAVAILABLE", `cannot reach baton at unix://${this.socketPath}: is \`baton up\` running? (set BATON_HOST or -H)`);
      }
      if (code === "EACCES") throw new BatonError("UNAVAILABLE", `permission denied on unix://${this.socketPath} (the socket is 0600: run as its owner)`);
      throw err;
    }
  }
}

function toError(json: unknown, status: number): BatonError {
  const j = (json ?? {}) as { code?: ErrorCode; message?: string; fields?: FieldProblem[] };
  return new BatonError(j.code ?? "INTERNAL", j.message ?? `HTTP ${status}`, j.fields ?? []);
}
