import type { MemberTlsFiles } from "./etcd-pki.js";

export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;

/**
 * Operations per transaction on the managed etcd (etcd's default is 128). The store is told the
 * same number (EtcdStore maxTxnOps), so the scheduler commits up to 1024 decisions at once and an
 * orchestrator plan may change up to ~1000 tasks of one service in one transaction.
 */
export const MANAGED_MAX_TXN_OPS = 1024;
/** 8 MiB per request (etcd's default 1.5 MiB): 1024 task objects of a few KiB fit. */
export const MANAGED_MAX_REQUEST_BYTES = 8 * 1024 * 1024;
/**
 * Raft timing for failover within 2 s: the leader heartbeats every 50 ms and a follower that heard
 * nothing for 500 ms starts an election (etcd's defaults are 100 / 1000 ms). Two reasons, both
 * measured in test/integration/ha-failover.test.ts:
 * - etcd's shortest lease TTL is 1.5 × the election timeout rounded up to whole seconds: 2 s with
 *   the defaults, 1 s with these. Baton's leader lease asks for 1 s (src/manager/leadership.ts).
 * - When the cut-off host also ran etcd's raft leader, a new one must be elected first (one to
 *   two election timeouts), and etcd then extends every lease by one election timeout before
 *   it can expire: 1 s + 1 s + 2 s with the defaults, 0.5 + 0.5 + 1 s with these.
 * Shorter still would trade failover time for spurious elections on a loaded host (etcd's
 * tuning guide: election timeout ≥ 10 × the peer round trip, heartbeat ≈ the round trip).
 */
export const HEARTBEAT_INTERVAL_MS = 50;
export const ELECTION_TIMEOUT_MS = 500;
/** 4 GiB backend quota (etcd's default 2 GiB; 8 GiB is etcd's recommended maximum). */
export const QUOTA_BACKEND_BYTES = 4 * 1024 * 1024 * 1024;
/**
 * Keep 5 minutes of history, as the Kubernetes API server compacts every 5 minutes: a manager's
 * watch that falls further behind relists (the store handles COMPACTED).
 */
export const AUTO_COMPACTION_RETENTION = "5m";

/** What one member is started with; kept in DIR/etcd/member.json so every restart is the same. */
export interface MemberConfig {
  /** The member's name: the manager's node id. */
  name: string;
  /** The address other members and managers reach it at. */
  advertise: string;
  clientPort: number;
  peerPort: number;
  /** `name=https://ip:2380,…`: every member including this one, as at its first start. */
  initialCluster: string;
  /** `new` for the first member of a cluster, `existing` for a member added to one. */
  initialClusterState: "new" | "existing";
  /** Tells two clusters created apart from each other (they refuse to talk). */
  clusterToken: string;
}

export const clientUrl = (c: Pick<MemberConfig, "advertise" | "clientPort">): string => `https://${hostInUrl(c.advertise)}:${c.clientPort}`;
export const peerUrl = (c: Pick<MemberConfig, "advertise" | "peerPort">): string => `https://${hostInUrl(c.advertise)}:${c.peerPort}`;
/** What Baton on the same host dials: loopback, so a manager reaches its member without the network. */
export const localClientUrl = (c: Pick<MemberConfig, "clientPort">): string => `https://127.0.0.1:${c.clientPort}`;

const hostInUrl = (host: string): string => (host.includes(":") ? `[${host}]` : host);

/** The etcd command line (after the binary) for a member, its data dir and its TLS files. */
export function etcdArgs(c: MemberConfig, dataDir: string, tls: MemberTlsFiles): string[] {
  const listenClient = [...new Set([clientUrl(c), localClientUrl(c)])].join(",");
  return [
    "--name", c.name,
    "--data-dir", dataDir,
    "--listen-client-urls", listenClient,
    "--advertise-client-urls", clientUrl(c),
    "--listen-peer-urls", peerUrl(c),
    "--initial-advertise-peer-urls", peerUrl(c),
    // The three below are read only while the data dir is empty: a restart rejoins as it was.
    "--initial-cluster", c.initialCluster,
    "--initial-cluster-state", c.initialClusterState,
    "--initial-cluster-token", c.clusterToken,
    // Clients and peers alike: TLS with a certificate of the etcd CA, nothing else admitted.
    "--cert-file", tls.certFile,
    "--key-file", tls.keyFile,
    "--trusted-ca-file", tls.caFile,
    "--client-cert-auth",
    "--peer-cert-file", tls.certFile,
    "--peer-key-file", tls.keyFile,
    "--peer-trusted-ca-file", tls.caFile,
    "--peer-client-cert-auth",
    "--heartbeat-interval", String(HEARTBEAT_INTERVAL_MS),
    "--election-timeout", String(ELECTION_TIMEOUT_MS),
    // A member cut off keeps campaigning, raising its term; back, without pre-vote, it would force
    // the healthy cluster into an election (writes stall again). Default from etcd 3.5; 3.4 has it off.
    "--pre-vote",
    "--max-txn-ops", String(MANAGED_MAX_TXN_OPS),
    "--max-request-bytes", String(MANAGED_MAX_REQUEST_BYTES),
    "--quota-backend-bytes", String(QUOTA_BACKEND_BYTES),
    "--auto-compaction-mode", "periodic",
    "--auto-compaction-retention", AUTO_COMPACTION_RETENTION,
    // A member add that would leave the cluster without quorum is refused (etcd's default, stated).
    "--strict-reconfig-check",
    "--logger", "zap",
    "--log-outputs", "stderr",
  ];
}
