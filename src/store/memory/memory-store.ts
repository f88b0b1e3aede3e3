import type { Clock } from "../../lib/clock.js";
import { systemClock } from "../../lib/clock.js";
import { CachedStore, type Persistence } from "../cached-store.js";

/**
 * Unit tests only: the same store with nothing persisted. `maxTxnOps` emulates etcd's
 * per-transaction limit (a transaction over it fails with PAYLOAD_TOO_LARGE).
 */
export function createMemoryStore(opts: { clock?: Clock; historyLimit?: number; maxTxnOps?: number } = {}): CachedStore {
  const none: Persistence = {
    load: () => ({ revision: 0, compacted: 0, objects: [], history: [] }),
    commit: () => undefined,
    close: () => undefined,
  };
  return new CachedStore(none, opts.clock ?? systemClock, opts.historyLimit, opts.maxTxnOps);
}
