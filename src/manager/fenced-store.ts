import type { Fence, Store } from "../store/store.js";

/**
 * The store as a controller of one term sees it: reads and watches pass through; every write
 * carries the term's fence (or fails at once when `fence` throws: no term), so a write from a
 * term that ended is refused by the store instead of applied.
 */
export function fencedStore(store: Store, fence: () => Fence | undefined): Store {
  return {
    ...(store.maxOpsPerTxn !== undefined ? { maxOpsPerTxn: store.maxOpsPerTxn } : {}),
    revision: () => store.revision(),
    view: (fn) => store.view(fn),
    update: (fn, opts) => {
      let f: Fence | undefined;
      try {
        f = fence();
      } catch (err) {
        return Promise.reject(err);
      }
      return store.update(fn, { ...opts, ...(f ? { fence: f } : {}) });
    },
    watch: (from, onEvents) => store.watch(from, onEvents),
    ...(store.sync ? { sync: () => store.sync!() } : {}),
    close: () => undefined,
  };
}
