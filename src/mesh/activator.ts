import type { Clock } from "../lib/clock.js";
import type { BackendState, ServicePool } from "./pool.js";

export interface ActivatorDeps {
  clock: Clock;
  /**
   * Called once per wait that starts because the service has no ready backend: the hook a
   * scale-from-zero controller uses to start a task. Must not throw.
   */
  onWaiting?: (serviceId: string) => void;
}

/** Picks a backend now, or a promise of one: undefined means "give up" (timeout or abort). */
export type Acquire = (pool: ServicePool, exclude?: ReadonlySet<BackendState>, signal?: AbortSignal) => BackendState | undefined | Promise<BackendState | undefined>;

/** The plain pick: no waiting. */
export const pickNow: Acquire = (pool, exclude) => pool.pick(exclude);

/**
 * Wraps a pick so that, while the service has no serving backend at all, the caller waits
 * (up to the pool's waitForBackendMs) for the first one instead of failing. A pick that fails
 * only because of `exclude` (every backend already tried) does not wait: that is a retry that
 * ran out of backends, not an empty service.
 *
 * The fast path stays synchronous (no promise per request); only waiters pay for one.
 */
export function withActivator(pick: Acquire, deps: ActivatorDeps): Acquire {
  return (pool, exclude, signal) => {
    const now = pick(pool, exclude, signal);
    if (now !== undefined || pool.size > 0) return now;
    deps.onWaiting?.(pool.serviceId);
    return new Promise<BackendState | undefined>((resolve) => {
      const done = (b: BackendState | undefined): void => {
        unsubscribe();
        cancelTimer();
        signal?.removeEventListener("abort", onAbort);
        resolve(b);
      };
      const onAbort = (): void => done(undefined);
      const unsubscribe = pool.onChange(() => {
        const b = pool.pick(exclude);
        if (b) done(b);
      });
      const cancelTimer = deps.clock.setTimer(pool.policy.waitForBackendMs, () => done(undefined));
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  };
}
