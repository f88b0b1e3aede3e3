import type { FieldProblem } from "../lib/errors.js";
import type { PortProtocol, PublishedPort } from "../model/objects.js";
import type { ServiceSpecInput } from "./schemas.js";

const PROTOCOLS = new Set<PortProtocol>(["tcp", "udp", "http"]);
const isPort = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= 65535;

/**
 * `-p`/`--publish` entries (docker's short and long syntax, or objects from the API) → ports.
 * Every problem names the entry: `publish[0].published: 99999 is not a port (1-65535)`.
 */
export function resolvePorts(input: ServiceSpecInput["publish"], problems: FieldProblem[]): PublishedPort[] {
  const out: PublishedPort[] = [];
  (input ?? []).forEach((entry, i) => {
    const path = (field?: string): (string | number)[] => (field ? ["publish", i, field] : ["publish", i]);
    const fields = typeof entry === "string" ? parsePortText(entry, (problem) => problems.push({ path: path(), problem })) : entry;
    if (!fields) return;
    const before = problems.length;
    const published = fields.published;
    const target = fields.target ?? published;
    const protocol = (fields.protocol ?? "tcp") as PortProtocol;
    const mode = fields.mode ?? "ingress";
    if (published !== undefined && !isPort(published)) problems.push({ path: path("published"), problem: `${published} is not a port (1-65535)` });
    if (target === undefined) problems.push({ path: path("target"), problem: "give a target port (or a published port)" });
    else if (!isPort(target)) problems.push({ path: path("target"), problem: `${target} is not a port (1-65535)` });
    if (!PROTOCOLS.has(protocol)) problems.push({ path: path("protocol"), problem: `"${String(protocol)}" is not tcp, udp or http` });
    if (mode !== "ingress" && mode !== "host") problems.push({ path: path("mode"), problem: `"${String(mode)}" is not ingress or host` });
    if (mode === "host" && published === undefined) problems.push({ path: path("published"), problem: "host mode needs a published port" });
    if (problems.length > before || target === undefined) return;
    out.push({ ...(published !== undefined ? { published } : {}), target, protocol, mode: mode as PublishedPort["mode"] });
  });
  const seen = new Map<string, number>();
  out.forEach((p, i) => {
    if (p.published === undefined) return;
    const key = `${p.published}/${p.protocol === "udp" ? "udp" : "tcp"}`;
    if (seen.has(key)) problems.push({ path: ["publish", i, "published"], problem: `${p.published} is published twice (also publish[${seen.get(key)}])` });
    else seen.set(key, i);
  });
  return out;
}

type PortFields = { published?: number; target?: number; protocol?: string; mode?: string };

/** "8080:80", "8080:80/udp", "80" (target only), or "published=8080,target=80,protocol=http,mode=host". */
function parsePortText(text: string, fail: (problem: string) => void): PortFields | undefined {
  const num = (v: string, what: string): number | undefined => {
    if (!/^\d{1,6}$/.test(v)) {
      fail(`"${text}": ${what} "${v}" is not a number`);
      return undefined;
    }
    return Number(v);
  };
  if (text.includes("=")) {
    const out: PortFields = {};
    for (const part of text.split(",")) {
      const [k, v = ""] = part.split("=", 2) as [string, string?];
      switch (k.trim()) {
        case "published": out.published = num(v, "published"); break;
        case "target": out.target = num(v, "target"); break;
        case "protocol": out.protocol = v; break;
        case "mode": out.mode = v; break;
        default:
          fail(`"${text}": unknown key "${k}" (use published, target, protocol, mode)`);
          return undefined;
      }
    }
    return out;
  }
  const m = /^(?:(\d+):)?(\d+)(?:\/(\w+))?$/.exec(text);
  if (!m) {
    fail(`"${text}" is not PUBLISHED:TARGET[/tcp|udp|http] or published=…,target=…`);
    return undefined;
  }
  const target = num(m[2]!, "target");
  // "80" alone is a target: the service answers on web:80 without a port on the nodes.
  return { ...(m[1] !== undefined ? { published: num(m[1], "published") } : {}), ...(target !== undefined ? { target } : {}), ...(m[3] ? { protocol: m[3] } : {}) };
}
