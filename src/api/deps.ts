import type { Clock } from "../lib/clock.js";
import type { Logger } from "../lib/log.js";
import type { Store } from "../store/store.js";
import type { LogSource } from "./logs.js";
import type { StatsSource } from "./stats.js";
import type { SystemControl } from "./system.js";
import type { ClusterControl } from "./cluster.js";
import type { SecretBox } from "../secrets/data-key.js";
import type { EtcdSnapshot } from "../ha/snapshot.js";
import type { MemberStatus } from "../ha/membership.js";

export interface RoleControl {
  /** The store is etcd (several managers possible). */
  etcd: boolean;
  /** The managed etcd's members (`init --ha`); absent on a user's etcd (its members are the user's). */
  members?: () => Promise<MemberStatus[]>;
  /** Removes a lost manager's etcd member (managed etcd). */
  removeMember?: (name: string) => Promise<void>;
  /** A role was declared: carry it out now rather than at the next check. */
  changed(): void;
}

/** What every route plugin gets at registration (no module-level singletons). */
export interface ApiDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  logs: LogSource;
  /** Tasks' resource use (`baton stats`); absent: every task answers "this manager reads no stats". */
  stats?: StatsSource;
  system: SystemControl;
  /** Cluster membership, on a manager started with `baton init`. */
  cluster?: ClusterControl;
  /** Seals secrets before they are stored; absent: secrets cannot be created here. */
  secrets?: SecretBox;
  /** On an etcd store: a snapshot of it (src/ha/snapshot.ts). */
  snapshot?: () => Promise<EtcdSnapshot>;
  /** On an etcd store: its members with their health (src/ha/membership.ts). */
  etcdMembers?: () => Promise<MemberStatus[]>;
  /**
   * HA managers: who leads and which managers are reachable (their etcd lease is alive). Absent
   * with one manager, which leads while it is up.
   */
  managerStatus?: () => { leader: string | undefined; reachable: Set<string> };
  /** A cluster's managers: what `node promote|demote` and a manager's `node rm` need (src/cluster/role-change.ts). */
  roles?: RoleControl;
  /** @default 1 MiB */
  bodyLimit?: number;
}
