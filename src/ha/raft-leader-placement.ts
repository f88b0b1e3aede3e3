import type { Clock } from "../lib/clock.js";
import type { Logger } from "../lib/log.js";
import type { MemberStatus } from "./membership.js";

/**
 * Where etcd's raft leadership should go when this host holds both leaders: to a healthy voting
 * member of another host (the first by name, so managers agree), or nowhere when this member is
 * not the raft leader or no other member could take it.
 */
export function raftLeaderTarget(selfName: string, members: readonly MemberStatus[]): MemberStatus | undefined {
  const self = members.find((m) => m.name === selfName);
  if (!self?.leader) return undefined;
  return members
    .filter((m) => m !== self && m.name !== "" && !m.isLearner && m.healthy)
    .sort((a, b) => a.name.localeCompare(b.name))[0];
}

export interface RaftLeaderPlacementDeps {
  /** This host's managed member's name (the node id). */
  selfName: string;
  /** Whether this manager is Baton's leader now: only the leader moves etcd's leadership. */
  isLeading(): boolean;
  members(): Promise<MemberStatus[]>;
  moveLeader(targetId: string): Promise<void>;
  clock: Clock;
  log: Logger;
  /** How often the leader looks. @default 2000 */
  periodMs?: number;
}

/**
 * Keeps Baton's leader and etcd's raft leader on different hosts (managed etcd only): a partition
 * of a host holding both costs two elections in a row (etcd's first, then the lease it extended),
 * 2–3 s instead of ~1.5 s. The leader checks every period and, when its own member leads raft,
 * hands raft leadership to another healthy voting member (etcd's MoveLeader: no election, no
 * write lost). One look at a time; a failed look is tried again at the next period.
 */
export class RaftLeaderPlacement {
  private cancel = (): void => undefined;
  private busy = false;
  private stopped = false;

  constructor(private readonly deps: RaftLeaderPlacementDeps) {}

  start(): void {
    const tick = (): void => {
      if (this.stopped) return;
      void this.look();
      this.cancel = this.deps.clock.setTimer(this.deps.periodMs ?? 2000, tick);
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
      const target = raftLeaderTarget(this.deps.selfName, await this.deps.members());
      if (!target || !this.deps.isLeading()) return undefined;
      await this.deps.moveLeader(target.id);
      this.deps.log.info({ to: target.name }, "etcd's raft leader moved off this host (Baton's leader is here)");
      return target.name;
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, "could not move etcd's raft leader off this host; trying again later");
      return undefined;
    } finally {
      this.busy = false;
    }
  }
}
