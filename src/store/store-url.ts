import { BatonError } from "../lib/errors.js";

/** Which backend a manager uses: `sqlite` (embedded default, in the data dir) or an etcd cluster. */
export type StoreChoice = { backend: "sqlite" } | { backend: "etcd"; endpoints: string[] };

/**
 * Parses `--store`: `sqlite`, or `etcd://host:port[,host:port…]`. A host without a port gets
 * etcd's 2379. The client URLs are `https://` when TLS to etcd is configured (`--etcd-ca`…),
 * plain `http://` otherwise.
 */
export function parseStoreUrl(value: string | undefined, opts: { tls?: boolean } = {}): StoreChoice {
  if (value === undefined || value === "sqlite") return { backend: "sqlite" };
  const bad = (problem: string): BatonError =>
    new BatonError("VALIDATION_FAILED", `--store "${value}": ${problem} (expected sqlite or etcd://host:port[,host:port…])`, [{ path: ["--store"], problem }]);
  if (!value.startsWith("etcd://")) throw bad("unknown store");
  const hosts = value.slice("etcd://".length).split(",").map((h) => h.trim());
  if (hosts.some((h) => h === "")) throw bad("an empty etcd address");
  const endpoints = hosts.map((h) => {
    const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(h);
    if (!m || (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535))) throw bad(`"${h}" is not host[:port]`);
    return `${opts.tls ? "https" : "http"}://${m[1]}:${m[2] ?? 2379}`;
  });
  return { backend: "etcd", endpoints };
}
