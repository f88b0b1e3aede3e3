import type { Clock } from "../lib/clock.js";
import type { Logger } from "../lib/log.js";
import type { Store } from "../store/store.js";
import type { LogSource } from "./logs.js";
import type { SystemControl } from "./system.js";
import type { ClusterControl } from "./cluster.js";

/** What every route plugin gets at registration (no module-level singletons). */
export interface ApiDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  logs: LogSource;
  system: SystemControl;
  /** Cluster membership, on a manager started with `baton init`. */
  cluster?: ClusterControl;
  /**
   * HA managers: who leads and which managers are reachable (their etcd lease is alive). Absent
   * with one manager, which leads while it is up.
   */
  managerStatus?: () => { leader: string | undefined; reachable: Set<string> };
  /** @default 1 MiB */
  bodyLimit?: number;
}
