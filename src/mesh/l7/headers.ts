/**
 * Header rewriting for the reverse proxy (RFC 9110 §7.6.1): hop-by-hop fields describe one
 * connection and are not forwarded, nor are the fields the Connection header names.
 * Headers travel as flat [name, value, name, value…] arrays, the form both node:http
 * (rawHeaders, writeHead) and undici accept without building objects.
 */

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"]);

/** Fields node:http handles itself (Expect: 100-continue is answered by the server; undici refuses it). */
const NOT_FORWARDED_UP = new Set([...HOP_BY_HOP, "expect", "x-forwarded-for"]);

export interface ClientInfo {
  /** The peer address of the client connection. */
  remoteAddress: string;
  /** "http": the mesh terminates plain HTTP only. */
  proto: string;
}

/**
 * Request headers for the backend: hop-by-hop removed; X-Forwarded-For gets the client address
 * appended (a chain from earlier proxies is kept); X-Forwarded-Proto and X-Forwarded-Host are
 * set when absent (a front proxy that already set them knows better than we do). Host is kept:
 * apps see the name the client used.
 */
export function requestHeaders(raw: readonly string[], client: ClientInfo): string[] {
  const drop = connectionTokens(raw);
  const out: string[] = [];
  let xff: string | undefined;
  let host: string | undefined;
  let hasProto = false;
  let hasFwdHost = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if (lower === "x-forwarded-for") xff = xff === undefined ? value : `${xff}, ${value}`;
    if (NOT_FORWARDED_UP.has(lower) || drop?.has(lower)) continue;
    if (lower === "host") host = value;
    else if (lower === "x-forwarded-proto") hasProto = true;
    else if (lower === "x-forwarded-host") hasFwdHost = true;
    out.push(name, value);
  }
  out.push("x-forwarded-for", xff === undefined ? client.remoteAddress : `${xff}, ${client.remoteAddress}`);
  if (!hasProto) out.push("x-forwarded-proto", client.proto);
  if (!hasFwdHost && host !== undefined) out.push("x-forwarded-host", host);
  return out;
}

/** Response headers for the client: hop-by-hop removed; node:http sets its own framing. */
export function responseHeaders(raw: readonly (Buffer | string)[]): string[] {
  // One pass (this runs on every response): convert, drop hop-by-hop, note whether a
  // Connection field names further fields to drop; only then make a second pass.
  const out: string[] = [];
  let named = false;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    const v = raw[i + 1]!;
    const name = typeof n === "string" ? n : n.toString("latin1");
    const value = typeof v === "string" ? v : v.toString("latin1");
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === "connection" && connectionTokens([name, value]) !== undefined) named = true;
      continue;
    }
    out.push(name, value);
  }
  if (!named) return out;
  const drop = connectionTokens(raw.map((x) => (typeof x === "string" ? x : x.toString("latin1"))))!;
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (!drop.has(out[i]!.toLowerCase())) kept.push(out[i]!, out[i + 1]!);
  return kept;
}

/** The field names listed in Connection (e.g. "Connection: close, X-Foo" → {x-foo}); undefined when none. */
function connectionTokens(raw: readonly string[]): Set<string> | undefined {
  let set: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length !== 10 || raw[i]!.toLowerCase() !== "connection") continue;
    for (const t of raw[i + 1]!.split(",")) {
      const tok = t.trim().toLowerCase();
      if (tok && tok !== "close" && tok !== "keep-alive") (set ??= new Set()).add(tok);
    }
  }
  return set;
}
