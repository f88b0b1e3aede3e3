import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, renameSync, rmSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import type { ClusterCa } from "../ca/ca.js";
import { readOptional, writeFileAtomic } from "../ca/files.js";
import { systemClock, type Clock } from "../lib/clock.js";
import { BatonError } from "../lib/errors.js";
import type { Logger } from "../lib/log.js";
import type { EtcdConnection, EtcdTls } from "../store/etcd/etcd-client.js";
import { clientUrl, ETCD_CLIENT_PORT, ETCD_PEER_PORT, etcdArgs, localClientUrl, MANAGED_MAX_TXN_OPS, peerUrl, type MemberConfig } from "./etcd-args.js";
import { ensureMemberCertificate } from "./etcd-pki.js";
import { EtcdProcess, requireEtcdBinary } from "./etcd-process.js";
import { addMember, listMembers, memberNames, promoteMember, removeMember, type MemberStatus } from "./membership.js";

/** Everything of the managed member lives under DIR/etcd; its log is DIR/logs/etcd.log. */
export const managedEtcdDir = (dataDir: string): string => join(dataDir, "etcd");

export interface ManagedEtcdOptions {
  /** Baton's data dir. */
  dataDir: string;
  /** The member's name: the manager's node id. */
  name: string;
  /** The address other managers reach this one at (an IP: it goes into the certificate). */
  advertise: string;
  /** The etcd CA (etcd-pki.ts): issues this member's certificate. */
  ca: ClusterCa;
  log: Logger;
  clock?: Clock;
  /** @default /usr/bin/etcd (BATON_ETCD_BINARY) */
  binary?: string;
  /** Wraps etcd's command line (tests: `ip netns exec`). */
  wrap?: (argv: string[]) => string[];
}

export interface JoinManagedEtcdOptions extends ManagedEtcdOptions {
  /** Client URLs of members of the cluster to join (`https://10.0.0.1:2379`). */
  existing: string[];
}

/** A started managed member: what the store and the membership flows need. */
export interface ManagedEtcd {
  readonly name: string;
  /** `https://ADVERTISE:2379`: what other managers list as this member. */
  readonly clientUrl: string;
  readonly peerUrl: string;
  /** What this manager's store connects with: its own member on loopback, with its certificate. */
  readonly connection: EtcdConnection;
  /** The --max-txn-ops the member runs with: the store's maxTxnOps. */
  readonly maxTxnOps: number;
  /** etcd's pid now (undefined while it is being restarted). */
  readonly pid: number | undefined;
  /** Restarts after etcd died under a running Baton. */
  readonly restarts: number;
  /** Every member of the cluster with its health (asked through this member). */
  members(): Promise<MemberStatus[]>;
  /** Stops the member (SIGTERM); the data stays for the next start. Idempotent. */
  stop(): Promise<void>;
  /**
   * Leaves the etcd cluster (manager leave/demote): removes this member through the cluster,
   * stops it and deletes DIR/etcd's data. The others keep quorum only if they are a majority
   * of the members left: remove one member at a time.
   */
  leave(): Promise<void>;
}

/** member.json: the member's start configuration, written before etcd first starts. */
interface MemberRecord extends MemberConfig {
  /** etcd's member id (hex) once it was added to an existing cluster. */
  id?: string;
  /** False between memberAdd and the promotion of the learner: a restart promotes it then. */
  voting: boolean;
}

const recordFile = "member.json";

async function readRecord(dir: string): Promise<MemberRecord | undefined> {
  const text = await readOptional(join(dir, recordFile));
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as MemberRecord;
  } catch (err) {
    throw new BatonError("VALIDATION_FAILED", `${join(dir, recordFile)} is not valid JSON: the managed etcd member cannot start`, [], { cause: err });
  }
}

const writeRecord = (dir: string, r: MemberRecord): Promise<void> => writeFileAtomic(dir, recordFile, JSON.stringify(r, null, 2) + "\n", 0o600);

/**
 * `baton init --ha`: the first member of a new single-member cluster, or this data dir's member
 * as it was (a later start, whichever way it joined). Resolves once the member serves.
 */
export async function startManagedEtcd(opts: ManagedEtcdOptions): Promise<ManagedEtcd> {
  requireEtcdBinary(opts.binary);
  const dir = managedEtcdDir(opts.dataDir);
  let rec = await readRecord(dir);
  if (!rec) {
    // A member that left (demoted, removed) must not come back as a cluster of its own.
    const gone = removedMemberDirs(opts.dataDir);
    if (gone.length > 0)
      throw new BatonError("BAD_REQUEST", `this manager's etcd member was removed from the cluster (its data is in ${gone.join(", ")}): it cannot start a cluster of its own; make it a manager again with \`baton node promote\` from another manager, or use a fresh --data-dir`);
    const base = { name: opts.name, advertise: opts.advertise, clientPort: ETCD_CLIENT_PORT, peerPort: ETCD_PEER_PORT };
    rec = { ...base, initialCluster: `${opts.name}=${peerUrl(base)}`, initialClusterState: "new", clusterToken: `baton-${randomBytes(8).toString("hex")}`, voting: true };
    await writeRecord(dir, rec);
  }
  return launch(opts, rec);
}

/**
 * A manager joining the HA managers: adds this host's member to the cluster of `existing` (as a
 * learner), starts it with `--initial-cluster-state existing`, promotes it to a voter once it
 * caught up, and resolves when it serves. Run by one manager at a time (etcd allows one learner).
 * Safe to call again after a crash at any step: member.json says how far it got.
 */
export async function joinManagedEtcd(opts: JoinManagedEtcdOptions): Promise<ManagedEtcd> {
  const dir = managedEtcdDir(opts.dataDir);
  let rec = await readRecord(dir);
  if (!rec) {
    if (opts.existing.length === 0) throw new BatonError("VALIDATION_FAILED", "joining a managed etcd needs the client URL of at least one member", [{ path: ["existing"], problem: "empty" }]);
    requireEtcdBinary(opts.binary);
    const base = { name: opts.name, advertise: opts.advertise, clientPort: ETCD_CLIENT_PORT, peerPort: ETCD_PEER_PORT };
    const { tls } = await ensureMemberCertificate(opts.ca, { dir: join(dir, "tls"), name: opts.name, addresses: certAddresses(opts.advertise), clock: opts.clock ?? systemClock });
    // Added before it starts: etcd refuses a peer it does not know.
    const added = await addMember({ endpoints: opts.existing, tls }, opts.name, peerUrl(base), opts.clock ?? systemClock);
    rec = { ...base, initialCluster: added.initialCluster, initialClusterState: "existing", clusterToken: "", id: added.id, voting: false };
    await writeRecord(dir, rec);
    opts.log.info({ member: opts.name, id: added.id }, "etcd member added to the cluster as a learner");
  }
  return launch(opts, rec, opts.existing);
}

const certAddresses = (advertise: string): string[] => [...new Set([advertise, "127.0.0.1"])];

async function launch(opts: ManagedEtcdOptions, rec: MemberRecord, existing: string[] = []): Promise<ManagedEtcd> {
  const clock = opts.clock ?? systemClock;
  const binary = requireEtcdBinary(opts.binary);
  const dir = managedEtcdDir(opts.dataDir);
  if (rec.name !== opts.name || rec.advertise !== opts.advertise)
    throw new BatonError(
      "VALIDATION_FAILED",
      `the managed etcd member in ${dir} is ${rec.name} at ${rec.advertise}, not ${opts.name} at ${opts.advertise}: an etcd member cannot change address (remove it and join again)`,
      [{ path: ["--advertise-addr"], problem: "differs from the etcd member's" }],
    );
  const log = opts.log.child({ component: "etcd" });
  const { files, tls } = await ensureMemberCertificate(opts.ca, { dir: join(dir, "tls"), name: rec.name, addresses: certAddresses(rec.advertise), clock });
  const local: EtcdConnection = { endpoints: [localClientUrl(rec)], tls };
  const dataDir = join(dir, "data");
  // Client URLs of the other members, kept fresh: they tell whether this member was removed.
  let peers = existing.filter((u) => u !== clientUrl(rec));
  const notePeers = (ms: { name: string; clientUrls: string[] }[]): void => {
    const others = ms.filter((m) => m.name !== rec.name).flatMap((m) => m.clientUrls);
    if (others.length > 0) peers = others;
  };
  const logFile = join(opts.dataDir, "logs", "etcd.log");
  const proc = new EtcdProcess({
    binary,
    args: etcdArgs(rec, dataDir, files),
    dataDir,
    logFile,
    pidFile: join(dir, "etcd.pid"),
    ready: () => httpsGet(local, "/version").then((r) => r !== undefined),
    clock,
    log,
    // The other members say; nobody answering is no proof (a partition): restarted then.
    isRemoved: async () => {
      if (peers.length === 0) return false;
      const ms = await memberNames({ endpoints: peers, tls });
      return !ms.some((m) => m.name === rec.name || (rec.id !== undefined && m.id === rec.id));
    },
    onRemoved: () => moveAside(dir, log),
    ...(opts.wrap ? { wrap: opts.wrap } : {}),
  });
  await proc.start();
  try {
    if (!rec.voting) {
      // A learner serves nothing but its own status: promote it through the members that vote.
      const voters = [...new Set([...existing, ...(await votingClientUrls(local, rec.name))])];
      await promoteMember({ endpoints: voters, tls }, rec.id!, clock);
      rec = { ...rec, voting: true };
      await writeRecord(dir, rec);
      log.info({ member: rec.name }, "etcd member promoted to a voting member");
    }
    await waitHealthy(local, clock, 30_000);
  } catch (err) {
    await proc.stop();
    throw err;
  }
  const member = rec;
  let stopped: Promise<void> | undefined;
  let cancelRefresh = (): void => undefined;
  const refresh = (): void => {
    void memberNames(local).then(notePeers, () => undefined);
    cancelRefresh = clock.setTimer(PEERS_REFRESH_MS, refresh);
  };
  refresh();
  const stop = (): Promise<void> => (stopped ??= (cancelRefresh(), proc.stop()));
  return {
    name: member.name,
    clientUrl: clientUrl(member),
    peerUrl: peerUrl(member),
    connection: local,
    maxTxnOps: MANAGED_MAX_TXN_OPS,
    get pid() {
      return proc.pid;
    },
    get restarts() {
      return proc.restarts;
    },
    members: async () => {
      const ms = await listMembers(local);
      notePeers(ms);
      return ms;
    },
    stop,
    async leave() {
      const others = (await listMembers(local)).filter((m) => m.name !== member.name && m.healthy).flatMap((m) => m.clientUrls);
      if (others.length === 0) throw new BatonError("BAD_REQUEST", `${member.name} is the only healthy etcd member: it cannot leave`);
      await removeMember({ endpoints: others, tls }, member.name, clock);
      await stop();
      moveAside(dir, log);
      log.info({ member: member.name }, "etcd member removed from the cluster");
    },
  };
}

/** Client URLs of the started voting members other than `self`, as the local member lists them. */
async function votingClientUrls(local: EtcdConnection, self: string): Promise<string[]> {
  try {
    return (await listMembers(local)).filter((m) => m.name !== self && !m.isLearner).flatMap((m) => m.clientUrls);
  } catch {
    return [];
  }
}

/** etcd's /health: true once the member is part of a quorum with a leader. */
async function waitHealthy(conn: EtcdConnection, clock: Clock, timeoutMs: number): Promise<void> {
  const deadline = clock.now() + timeoutMs;
  let last = "";
  for (;;) {
    const body = await httpsGet(conn, "/health");
    if (body !== undefined && (JSON.parse(body) as { health?: string }).health === "true") return;
    last = body ?? "no answer";
    if (clock.now() > deadline) throw new BatonError("UNAVAILABLE", `the etcd member at ${conn.endpoints[0]} is not healthy after ${timeoutMs} ms (last: ${last})`, [], { retryable: true });
    await clock.sleep(100);
  }
}

/** GET on the first endpoint with the member's TLS; the body on 200, undefined otherwise. */
function httpsGet(conn: EtcdConnection, path: string): Promise<string | undefined> {
  const tls: EtcdTls = conn.tls!;
  return new Promise((resolve) => {
    const req = request(
      new URL(path, conn.endpoints[0]),
      { ca: [tls.caCertPem], ...(tls.certPem ? { cert: tls.certPem, key: tls.keyPem } : {}), timeout: 1000, agent: false },
      (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve(res.statusCode === 200 ? body : undefined));
        res.on("error", () => resolve(undefined));
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
    req.end();
  });
}

const REMOVED_PREFIX = "etcd.removed-";
/** How often the member list is read again (the peers that tell whether this member was removed). */
const PEERS_REFRESH_MS = 10_000;

/** DIR/etcd of a member that is no longer one, renamed DIR/etcd.removed-<time> (kept for inspection, never restarted). */
function moveAside(dir: string, log: Logger): void {
  if (!existsSync(dir)) return;
  const to = join(dir, "..", `${REMOVED_PREFIX}${new Date().toISOString().replace(/[:.]/g, "-")}`);
  renameSync(dir, to);
  // Its key is still one the etcd CA signed, which every member admits as a client: it goes.
  rmSync(join(to, "tls"), { recursive: true, force: true });
  log.warn({ movedTo: to }, "the removed etcd member's data was moved aside");
}

/** The moved-aside data dirs of members this data dir ran before. */
export function removedMemberDirs(dataDir: string): string[] {
  try {
    return readdirSync(dataDir).filter((f) => f.startsWith(REMOVED_PREFIX)).map((f) => join(dataDir, f));
  } catch {
    return [];
  }
}

/** True when this data dir runs a managed etcd member (a later start of `baton init --ha`). */
export const hasManagedEtcd = (dataDir: string): boolean => existsSync(join(managedEtcdDir(dataDir), recordFile));
