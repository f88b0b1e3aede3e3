import { noop } from "cockatiel";
import type { Etcd3, IMember } from "etcd3";
import type { Clock } from "../lib/clock.js";
import { BatonError } from "../lib/errors.js";
import { newEtcdClient, type EtcdConnection } from "../store/etcd/etcd-client.js";

/** One member as `listMembers` reports it. */
export interface MemberStatus {
  /** etcd's member id, in hex as etcdctl prints it. */
  id: string;
  /** Empty for a member that was added but never started. */
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  /** A non-voting member catching up (added by addMember, promoted once in sync). */
  isLearner: boolean;
  /** It answered a status request within the deadline and knows a leader. */
  healthy: boolean;
  /** It is the raft leader. */
  leader: boolean;
  /** Why it is not healthy. */
  error?: string;
}

/** How long a member may take to answer a status request before it counts as unhealthy. */
const STATUS_TIMEOUT_MS = 2000;

const hex = (id: string): string => BigInt(id).toString(16);

async function withClient<T>(conn: EtcdConnection, fn: (c: Etcd3) => Promise<T>): Promise<T> {
  // One short-lived client per call, no circuit breaker: membership calls are few, and a breaker
  // opened by a member that was down would refuse calls after it is back.
  const client = newEtcdClient(conn, { dialTimeout: STATUS_TIMEOUT_MS, faultHandling: { global: noop, host: () => noop } });
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

function unavailable(what: string, conn: EtcdConnection, err: unknown): BatonError {
  return new BatonError("UNAVAILABLE", `${what}: no etcd member answered at ${conn.endpoints.join(", ")} (${(err as Error).message})`, [], { cause: err, retryable: true });
}

async function memberList(c: Etcd3): Promise<IMember[]> {
  return (await c.cluster.memberList({}, { deadline: Date.now() + STATUS_TIMEOUT_MS })).members;
}

/** Every member without asking each for its health: name, id (hex) and client URLs, as the cluster lists them. */
export async function memberNames(conn: EtcdConnection): Promise<{ id: string; name: string; clientUrls: string[] }[]> {
  const members = await withClient(conn, memberList).catch((err: unknown) => {
    throw unavailable("cannot list the etcd members", conn, err);
  });
  return members.map((m) => ({ id: hex(m.ID), name: m.name, clientUrls: m.clientURLs }));
}

/** Every member with its health: each started member is asked for its status at its own client URL. */
export async function listMembers(conn: EtcdConnection): Promise<MemberStatus[]> {
  const members = await withClient(conn, memberList).catch((err: unknown) => {
    throw unavailable("cannot list the etcd members", conn, err);
  });
  return Promise.all(
    members.map(async (m): Promise<MemberStatus> => {
      const base = { id: hex(m.ID), name: m.name, peerUrls: m.peerURLs, clientUrls: m.clientURLs, isLearner: m.isLearner === true };
      if (m.clientURLs.length === 0) return { ...base, healthy: false, leader: false, error: "never started" };
      try {
        const s = await withClient({ ...conn, endpoints: m.clientURLs }, (c) => c.maintenance.status({ deadline: Date.now() + STATUS_TIMEOUT_MS }));
        const hasLeader = s.leader !== "0";
        return { ...base, healthy: hasLeader, leader: hasLeader && s.leader === s.header.member_id, ...(hasLeader ? {} : { error: "no leader" }) };
      } catch (err) {
        return { ...base, healthy: false, leader: false, error: (err as Error).message };
      }
    }),
  );
}

/** Whether the member `conn` reaches leads raft: one status call, no member list. */
export async function leadsRaft(conn: EtcdConnection): Promise<boolean> {
  const s = await withClient(conn, (c) => c.maintenance.status({ deadline: Date.now() + STATUS_TIMEOUT_MS })).catch((err: unknown) => {
    throw unavailable("cannot read the etcd member's status", conn, err);
  });
  return s.leader !== "0" && s.leader === s.header.member_id;
}

/** What a new member is started with after `addMember`. */
export interface AddedMember {
  id: string;
  /** `--initial-cluster`: every member's name=peerURL, this one's included. */
  initialCluster: string;
}

/**
 * Adds a member as a raft **learner** (non-voting) and returns the --initial-cluster to start it
 * with (`--initial-cluster-state existing`). Start the member only after this: etcd refuses a
 * peer it does not know. A learner does not count towards quorum, so a member that never starts
 * (wrong address, a firewall) leaves the cluster's quorum as it was; adding it as a voter would
 * turn a healthy one-member cluster into a two-member cluster that needs both, stuck until the
 * second starts. promoteMember makes it a voter once it has caught up.
 *
 * Idempotent for a retry: a member already added with the same peer URL (and not started under
 * another name) is returned instead of adding a second one. etcd allows one learner at a time,
 * so members join one after the other.
 */
export async function addMember(conn: EtcdConnection, name: string, peerUrl: string, clock: Clock, timeoutMs = 30_000): Promise<AddedMember> {
  const deadline = clock.now() + timeoutMs;
  return withClient(conn, async (c) => {
    let members: IMember[];
    for (;;) {
      try {
        members = await memberList(c);
      } catch (err) {
        throw unavailable("cannot add an etcd member", conn, err);
      }
      // Another manager joining at the same time: its learner starts, and is promoted, shortly.
      const starting = members.find((m) => m.name === "" && !m.peerURLs.includes(peerUrl));
      if (!starting || clock.now() > deadline) break;
      await clock.sleep(500);
    }
    const same = members.find((m) => m.peerURLs.includes(peerUrl));
    if (same && same.name !== "" && same.name !== name)
      throw new BatonError("VALIDATION_FAILED", `etcd member ${same.name} already uses the peer URL ${peerUrl}: remove it first`, [{ path: ["peerUrl"], problem: "in use" }]);
    const taken = members.find((m) => m.name === name && !m.peerURLs.includes(peerUrl));
    if (taken)
      throw new BatonError("VALIDATION_FAILED", `an etcd member named ${name} exists at ${taken.peerURLs.join(",")}: remove it first`, [{ path: ["name"], problem: "in use" }]);
    let id: string;
    if (same) {
      id = same.ID;
    } else {
      const other = members.find((m) => m.name === "");
      if (other)
        throw new BatonError("UNAVAILABLE", `etcd member ${hex(other.ID)} (${other.peerURLs.join(",")}) was added but never started: start it, or remove it, before adding another`, [], { retryable: true });
      for (;;) {
        try {
          const res = await c.cluster.memberAdd({ peerURLs: [peerUrl], isLearner: true }, { deadline: Date.now() + 10_000 });
          id = res.member.ID;
          members = res.members;
          break;
        } catch (err) {
          // etcd's --strict-reconfig-check counts a member as active only once it has been
          // connected for 5 s: right after the previous join it answers "unhealthy cluster".
          const retry = /unhealthy cluster|too many learner/i.test((err as Error).message) && clock.now() < deadline;
          if (!retry) throw new BatonError("UNAVAILABLE", `etcd refused to add member ${name} at ${peerUrl}: ${(err as Error).message}`, [], { cause: err, retryable: true });
        }
        await clock.sleep(500);
      }
    }
    const initialCluster = members
      .flatMap((m) => m.peerURLs.map((u) => `${m.ID === id ? name : m.name}=${u}`))
      .join(",");
    return { id: hex(id), initialCluster };
  });
}

/**
 * Makes a learner a voting member. etcd refuses until the learner has caught up with the
 * leader's log: retried until `timeoutMs`.
 */
export async function promoteMember(conn: EtcdConnection, idHex: string, clock: Clock, timeoutMs = 60_000): Promise<void> {
  const deadline = clock.now() + timeoutMs;
  let last = "";
  await withClient(conn, async (c) => {
    for (;;) {
      try {
        await c.cluster.memberPromote({ ID: BigInt(`0x${idHex}`).toString() }, { deadline: Date.now() + 5000 });
        return;
      } catch (err) {
        last = (err as Error).message;
        // Already a voter (a retry after a promote whose answer was lost).
        if (/not a learner/i.test(last)) return;
      }
      if (clock.now() > deadline) throw new BatonError("UNAVAILABLE", `etcd member ${idHex} was not promoted within ${timeoutMs} ms: ${last}`, [], { retryable: true });
      await clock.sleep(200);
    }
  });
}

/**
 * Removes a member (by name or hex id). The member's etcd stops serving once it learns it was
 * removed; its data dir must then be deleted before it could join again. Refuses to remove the
 * last member (that is deleting the cluster, not shrinking it).
 */
export async function removeMember(conn: EtcdConnection, nameOrId: string, clock: Clock, timeoutMs = 30_000): Promise<MemberStatus> {
  const members = await listMembers(conn);
  const m = members.find((x) => x.name === nameOrId || x.id === nameOrId.toLowerCase());
  if (!m) throw new BatonError("NOT_FOUND", `no etcd member named ${nameOrId} (members: ${members.map((x) => x.name || x.id).join(", ")})`);
  if (members.length === 1) throw new BatonError("BAD_REQUEST", `${nameOrId} is the last etcd member: removing it would delete the cluster`);
  const deadline = clock.now() + timeoutMs;
  await withClient(conn, async (c) => {
    for (;;) {
      try {
        await c.cluster.memberRemove({ ID: BigInt(`0x${m.id}`).toString() }, { deadline: Date.now() + 10_000 });
        return;
      } catch (err) {
        // As for addMember: a member restarted less than 5 s ago does not count as active yet.
        if (!/unhealthy cluster/i.test((err as Error).message) || clock.now() > deadline)
          throw new BatonError("UNAVAILABLE", `etcd refused to remove member ${nameOrId}: ${(err as Error).message}`, [], { cause: err, retryable: true });
      }
      await clock.sleep(500);
    }
  });
  return m;
}

/**
 * Hands etcd's raft leadership to member `targetId` (hex, as listMembers reports it). etcd takes
 * it only from the current raft leader: `conn` must reach that member.
 */
export async function moveLeader(conn: EtcdConnection, targetId: string): Promise<void> {
  await withClient(conn, (c) => c.maintenance.moveLeader({ targetID: BigInt(`0x${targetId}`).toString() }, { deadline: Date.now() + 5000 })).catch((err: unknown) => {
    throw new BatonError("UNAVAILABLE", `etcd did not move its raft leader to member ${targetId}: ${(err as Error).message}`, [], { cause: err, retryable: true });
  });
}
