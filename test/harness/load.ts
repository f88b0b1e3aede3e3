import { Agent, request } from "node:http";

export interface LoadResult {
  ok: number;
  failed: number;
  /** First few failures, for the assertion message. */
  errors: string[];
  /** Response bodies' first word (the task that answered) → count. */
  by: Map<string, number>;
  /** Response bodies' third word (the version that answered, e.g. "v2") → count. */
  versions: Map<string, number>;
  /** The version of the last answer. */
  lastVersion?: string;
  /** Every answer: when its request started and ended (ms, monotonic) and its version. */
  answers: { start: number; end: number; version: string; status: number }[];
}

/**
 * A bounded HTTP load against 127.0.0.1: `concurrency` loops of GET `path`, keep-alive (or a new
 * connection per request), until `durationMs` has passed or `stop` resolves. Counts failures:
 * connection errors, timeouts and non-2xx answers.
 */
export async function runLoad(opts: { port: number; path?: string; durationMs: number; concurrency?: number; keepAlive?: boolean; stop?: Promise<unknown> }): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: opts.keepAlive ?? true, maxSockets: opts.concurrency ?? 4 });
  const res: LoadResult = { ok: 0, failed: 0, errors: [], by: new Map(), versions: new Map(), answers: [] };
  const deadline = Date.now() + opts.durationMs;
  let stopped = false;
  void opts.stop?.then(() => (stopped = true));
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const start = performance.now();
      const req = request({ host: "127.0.0.1", port: opts.port, path: opts.path ?? "/", agent, timeout: 10_000 }, (r) => {
        let body = "";
        r.on("data", (d: Buffer) => (body += d.toString()));
        r.on("end", () => {
          if ((r.statusCode ?? 0) >= 200 && (r.statusCode ?? 0) < 300) {
            res.ok++;
            const [who, , version] = body.trim().split(" ");
            res.by.set(who!, (res.by.get(who!) ?? 0) + 1);
            if (version) {
              res.versions.set(version, (res.versions.get(version) ?? 0) + 1);
              res.lastVersion = version;
              res.answers.push({ start, end: performance.now(), version, status: r.statusCode ?? 0 });
            }
          } else {
            fail(`HTTP ${r.statusCode}: ${body.slice(0, 80)}`);
            const version = body.trim().split(" ")[2];
            if (version) res.answers.push({ start, end: performance.now(), version, status: r.statusCode ?? 0 });
          }
          resolve();
        });
        r.on("error", (e) => (fail(e.message), resolve()));
      });
      const fail = (why: string): void => {
        res.failed++;
        if (res.errors.length < 5) res.errors.push(why);
      };
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", (e) => (fail(e.message), resolve()));
      req.end();
    });
  const loop = async (): Promise<void> => {
    while (!stopped && Date.now() < deadline) await one();
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, loop));
  agent.destroy();
  return res;
}

/** Shares of the answers per task, in percent. */
export function shares(r: LoadResult): number[] {
  const total = [...r.by.values()].reduce((a, b) => a + b, 0);
  return [...r.by.values()].map((n) => (100 * n) / total);
}
