import type { Clock } from "../../lib/clock.js";
import { systemClock } from "../../lib/clock.js";
import { CachedStore, type Persistence } from "../cached-store.js";

/** Unit tests only: the same store with nothing persisted. */
export function createMemoryStore(opts: { clock?: Clock; historyLimit?: number } = {}): CachedStore {
  const none: Persistence = {
    load: () => ({ revision: 0, compacted: 0, objects: [], history: [] }),
    commit: () => undefined,
    close: () => undefined,
  };
  return new CachedStore(none, opts.clock ?? systemClock, opts.historyLimit);
}
