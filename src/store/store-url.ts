import { BatonError } from "../lib/errors.js";

/** Which backend a manager uses: `sqlite` (embedded default, in the data dir) or an etcd cluster. */
export type StoreChoice = { backend: "sqlite" } | { backend: "etcd"; endpoints: string[] };

/**
 * Parses `--store`: `sqlite`, or `etcd://host:port[,host:port…]` (plain http to every member;
 * TLS flags come with managed etcd). A host without a port gets etcd's 2379.
 */
export function parseStoreUrl(value: string | undefined): StoreChoice {
  if (value === undefined || value === "sqlite") return { backend: "sqlite" };
  const bad = (problem: string): BatonError =>
    new BatonError("VALIDATION_FAILED", `--store "${value}": ${problem} (expected sqlite or etcd://host:port[,host:port…])`, [{ path: ["--store"], problem }]);
  if (!value.startsWith("etcd://")) throw bad("unknown store");
  const hosts = value.slice("etcd://".length).split(",").map((h) => h.trim());
  if (hosts.some((h) => h === "")) throw bad("an empty etcd address");
  const endpoints = hosts.map((h) => {
    const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(h);
    if (!m || (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535))) throw bad(`"${h}" is not host[:port]`);
    return `http://${m[1]}:${m[2] ?? 2379}`;
  });
  return { backend: "etcd", endpoints };
}
