import type { Clock } from "../lib/clock.js";
import type { Logger } from "../lib/log.js";
import type { MemberStatus } from "./membership.js";

/**
 * Where etcd's raft leadership should go when this host holds both leaders: to a healthy voting
 * member of another host (the first by name, so managers agree), or nowhere when this member is
 * not the raft leader, or the healthy voters of other hosts are not a quorum on their own. Only
 * then does the move pay: a partition of this host leaves them able to elect without it, whereas
 * with a voter already lost the cluster would stop either way, and a move is one more pause.
 */
export function raftLeaderTarget(selfName: string, members: readonly MemberStatus[]): MemberStatus | undefined {
  const self = members.find((m) => m.name === selfName);
  if (!self?.leader) return undefined;
  const voters = members.filter((m) => !m.isLearner);
  const others = voters.filter((m) => m !== self && m.name !== "" && m.healthy).sort((a, b) => a.name.localeCompare(b.name));
  if (others.length < Math.floor(voters.length / 2) + 1) return undefined;
  return others[0];
}

export interface RaftLeaderPlacementDeps {
  /** This host's managed member's name (the node id). */
  selfName: string;
  /** Whether this manager is Baton's leader now: only the leader moves etcd's leadership. */
  isLeading(): boolean;
  /** Whether this host's member leads raft: one status call on loopback, made before listing members. */
  selfLeadsRaft(): Promise<boolean>;
  members(): Promise<MemberStatus[]>;
  moveLeader(targetId: string): Promise<void>;
  clock: Clock;
  log: Logger;
  /** How often the leader looks. @default 2000 */
  periodMs?: number;
  /** The longest wait after failed moves (the wait doubles from periodMs with each). @default 30000 */
  maxBackoffMs?: number;
}

/**
 * Keeps Baton's leader and etcd's raft leader on different hosts (managed etcd only): a partition
 * of a host holding both costs two elections in a row (etcd's first, then the lease it extended),
 * 2–3 s instead of ~1.5 s. The leader checks every period and, when its own member leads raft,
 * hands raft leadership to another healthy voting member (etcd's MoveLeader: no election, no
 * write lost). One look at a time; after a failed move the next look waits twice as long (up to
 * maxBackoffMs), so a member that keeps refusing is not asked every period.
 */
export class RaftLeaderPlacement {
  private cancel = (): void => undefined;
  private busy = false;
  private stopped = false;
  private failures = 0;

  constructor(private readonly deps: RaftLeaderPlacementDeps) {}

  start(): void {
    const tick = (): void => {
      if (this.stopped) return;
      void this.look().finally(() => {
        if (this.stopped) return;
        const period = this.deps.periodMs ?? 2000;
        this.cancel = this.deps.clock.setTimer(Math.min(period * 2 ** this.failures, Math.max(period, this.deps.maxBackoffMs ?? 30_000)), tick);
      });
    };
    tick();
  }

  stop(): void {
    this.stopped = true;
    this.cancel();
  }

  /** One look: moves etcd's raft leadership off this host when it holds both. Resolves to the member it went to. */
  async look(): Promise<string | undefined> {
    if (this.busy || this.stopped || !this.deps.isLeading()) return undefined;
    this.busy = true;
    try {
      if (!(await this.deps.selfLeadsRaft())) {
        this.failures = 0;
        return undefined;
      }
      const target = raftLeaderTarget(this.deps.selfName, await this.deps.members());
      if (!target || !this.deps.isLeading()) return undefined;
      await this.deps.moveLeader(target.id);
      this.failures = 0;
      this.deps.log.info({ to: target.name }, "etcd's raft leader moved off this host (Baton's leader is here)");
      return target.name;
    } catch (err) {
      this.failures = Math.min(this.failures + 1, 10);
      this.deps.log.warn({ err: (err as Error).message, failures: this.failures }, "could not move etcd's raft leader off this host; trying again later");
      return undefined;
    } finally {
      this.busy = false;
    }
  }
}
