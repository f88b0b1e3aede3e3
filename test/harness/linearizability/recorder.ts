// The history recorder: concurrent clients doing random create/update/delete/get on a few
// service names through a real Baton API (unix socket, or TCP with mutual TLS; several endpoints,
// e.g. different managers), each operation recorded with its invoke and return times and its
// outcome, ready for checkHistory(serviceModel(...), history).
//
//   const history = await recordHistory({ endpoints: [{ socketPath }], clients: 5, opsPerClient: 100, names: ["lin-a", "lin-b"] });
//
// A refusal the API answers (404, 409, 400) is a definite `fail`; no answer within the timeout, a
// connection error or a 5xx is a `timeout`: the write may or may not have happened.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { PeerCertificate } from "node:tls";
import { verifyPeer } from "../../../src/ca/verify.js";
import { RevocationList } from "../../../src/ca/revocation.js";
import { systemClock } from "../../../src/lib/clock.js";
import { prng } from "./prng.js";
import type { ServiceInput, ServiceOp, ServiceOpName } from "./service-model.js";

/** Where a client sends its requests. */
export type Endpoint = { socketPath: string } | { host: string; port: number; ca: string; cert: string; key: string };

export interface RecordOptions {
  /** Client i talks to endpoints[i % endpoints.length]. */
  endpoints: Endpoint[];
  clients: number;
  opsPerClient: number;
  /** The service names the clients share (few names = much contention). */
  names: string[];
  /** A request without an answer by then is recorded as `timeout`. @default 5000 */
  requestTimeoutMs?: number;
  /** The services' command; with 0 replicas it never runs. @default ["sleep", "3600"] */
  command?: string[];
  /** Seeds the clients' choices. @default Date.now() */
  seed?: number;
  /** Share of reads sent with `?stale=true` (recorded as stale reads). @default 0 */
  staleReads?: number;
  /**
   * Share of updates, deletes and reads that address the service by the last id their client saw
   * for that name instead of by name (an id of a deleted incarnation must find nothing). @default 0.3
   */
  byId?: number;
  /** Stops the clients early (what was recorded so far is returned). */
  signal?: AbortSignal;
  /**
   * Stops only the clients of one endpoint (by index), e.g. those of a manager about to be killed:
   * their request in flight then is recorded as it ends (usually a `timeout`), and they send no more.
   */
  endpointSignals?: (AbortSignal | undefined)[];
}

interface ApiAnswer {
  status: number;
  body: Record<string, unknown> | undefined;
}
type Sent = ApiAnswer | { error: string };

/** The token kept in each service's env: the spec as the model sees it. */
const TOKEN = "LIN_WRITE=";

/**
 * Runs the clients to the end and returns every operation, in no particular order. The names must
 * not exist yet (the model starts from no services): checked first, through the first endpoint.
 */
export async function recordHistory(o: RecordOptions): Promise<ServiceOp[]> {
  const rnd = prng(o.seed ?? Date.now());
  const history: ServiceOp[] = [];
  const agents = o.endpoints.map(agentFor);
  try {
    for (const name of o.names) {
      const r = await send(agents[0]!, o.endpoints[0]!, "GET", `/v1/services/${encodeURIComponent(name)}`, undefined, o.requestTimeoutMs ?? 5000);
      if (!("status" in r) || r.status !== 404) {
        throw new Error(`service "${name}" ${"status" in r ? `answered ${r.status}` : `could not be checked (${r.error})`}: the recorder needs names that do not exist yet (the model starts from no services)`);
      }
    }
    await Promise.all(
      Array.from({ length: o.clients }, (_, c) => runClient(c, o, agents[c % agents.length]!, o.endpoints[c % o.endpoints.length]!, prng(Math.floor(rnd() * 2 ** 32)), history)),
    );
  } finally {
    for (const a of agents) a.destroy();
  }
  return history;
}

async function runClient(c: number, o: RecordOptions, agent: HttpAgent, ep: Endpoint, rnd: () => number, history: ServiceOp[]): Promise<void> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const seen = new Map<string, number>();
  const seenId = new Map<string, string>();
  const timeoutMs = o.requestTimeoutMs ?? 5000;
  const command = o.command ?? ["sleep", "3600"];
  let writes = 0;
  const body = (name: string, token: string) => ({ name, replicas: 0, command, env: [`${TOKEN}${token}`] });

  const stopped = o.endpointSignals?.[c % o.endpoints.length];
  for (let i = 0; i < o.opsPerClient && !o.signal?.aborted && !stopped?.aborted; i++) {
    const name = pick(o.names);
    const kind: ServiceOpName = pick(["create", "create", "update", "update", "update", "delete", "get", "get", "get", "get"] as const);
    const token = `c${c}-${++writes}`;
    const stale = kind === "get" && (o.staleReads ?? 0) > 0 && rnd() < o.staleReads!;
    const id = kind !== "create" && seenId.has(name) && rnd() < (o.byId ?? 0.3) ? seenId.get(name) : undefined;
    const ref = encodeURIComponent(id ?? name);
    const target: ServiceInput = id !== undefined ? { name, id } : { name };
    const input: ServiceInput =
      kind === "create" ? { name, spec: token }
      : kind === "update" ? { ...target, spec: token, version: seen.get(name) ?? 0 }
      : kind === "get" && stale ? { ...target, stale: true }
      : target;
    const invokeAt = performance.now();
    const answer =
      kind === "create" ? await send(agent, ep, "POST", "/v1/services", body(name, token), timeoutMs)
      : kind === "update" ? await send(agent, ep, "POST", `/v1/services/${ref}/update`, { version: input.version, spec: body(name, token) }, timeoutMs)
      : kind === "delete" ? await send(agent, ep, "DELETE", `/v1/services/${ref}`, undefined, timeoutMs)
      : await send(agent, ep, "GET", `/v1/services/${ref}${stale ? "?stale=true" : ""}`, undefined, timeoutMs);
    const returnAt = performance.now();
    const op: ServiceOp = { client: c, op: kind, input, invokeAt, outcome: "timeout" };
    if (!("status" in answer) || answer.status >= 500) {
      const code = "status" in answer ? answer.body?.code : undefined;
      history.push({ ...op, error: "status" in answer ? `HTTP ${answer.status}${typeof code === "string" ? ` ${code}` : ""}` : answer.error });
      continue;
    }
    const b = answer.body ?? {};
    if (answer.status >= 400) {
      history.push({ ...op, returnAt, outcome: "fail", output: { code: typeof b.code === "string" ? b.code : `HTTP_${answer.status}` } });
      continue;
    }
    const gotId = typeof b.id === "string" ? b.id : undefined;
    const version = typeof b.version === "number" ? b.version : undefined;
    if (version !== undefined && !stale) seen.set(name, version);
    if (gotId !== undefined && kind !== "delete") seenId.set(name, gotId);
    const output =
      kind === "get" ? { id: gotId, version, spec: tokenOf(b) }
      : kind === "delete" ? { id: gotId }
      : { id: gotId, version };
    history.push({ ...op, returnAt, outcome: "ok", output: stripUndefined(output) });
  }
}

/** The write token in a service as the API returns it (its input form's env). */
function tokenOf(svc: Record<string, unknown>): string | undefined {
  const env = (svc.specInput as { env?: unknown } | undefined)?.env;
  if (!Array.isArray(env)) return undefined;
  const e = env.find((x): x is string => typeof x === "string" && x.startsWith(TOKEN));
  return e?.slice(TOKEN.length);
}

const stripUndefined = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

function agentFor(ep: Endpoint): HttpAgent {
  // Connections kept alive: each request costs what the API costs, not a TLS handshake.
  return "socketPath" in ep ? new HttpAgent({ keepAlive: true }) : new HttpsAgent({ keepAlive: true, ca: [ep.ca], cert: ep.cert, key: ep.key, minVersion: "TLSv1.3" });
}

/** A manager is known by its certificate from the cluster CA, not by a DNS name (as the CLI checks it). */
function managerIdentity(caCertPem: string, cert: PeerCertificate): Error | undefined {
  try {
    verifyPeer(cert, { caCertPem, clock: systemClock, revocations: new RevocationList() }, { requireRole: "manager" });
    return undefined;
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

/** One request: the answer, or why none came (connection error, timeout). */
function send(agent: HttpAgent, ep: Endpoint, method: string, path: string, body: unknown, timeoutMs: number): Promise<Sent> {
  return new Promise((resolve) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = payload === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) };
    const onResponse = (res: IncomingMessage): void => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => {
        let parsed: Record<string, unknown> | undefined;
        try {
          parsed = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
        } catch {
          parsed = undefined;
        }
        resolve({ status: res.statusCode ?? 500, body: parsed });
      });
      res.on("error", (err) => resolve({ error: err.message }));
    };
    const req =
      "socketPath" in ep
        ? httpRequest({ socketPath: ep.socketPath, path, method, headers, agent }, onResponse)
        : httpsRequest({ host: ep.host, port: ep.port, path, method, headers, agent: agent as HttpsAgent, checkServerIdentity: (_h, cert) => managerIdentity(ep.ca, cert) }, onResponse);
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (err) => resolve({ error: err.message }));
    req.end(payload);
  });
}
