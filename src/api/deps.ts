import type { Clock } from "../lib/clock.js";
import type { Logger } from "../lib/log.js";
import type { Store } from "../store/store.js";
import type { LogSource } from "./logs.js";
import type { StatsSource } from "./stats.js";
import type { SystemControl } from "./system.js";
import type { ClusterControl } from "./cluster.js";

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
  /** @default 1 MiB */
  bodyLimit?: number;
}
