import type { Clock } from "./clock.js";
import type { Logger } from "./log.js";

/**
 * A keyed work queue (client-go workqueue semantics): a key added while queued is queued once;
 * a key is never processed twice at once (added while running → run again after); delayed adds
 * keep the earliest due time. Failures retry with capped exponential backoff.
 */
export class KeyedQueue {
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly order: string[] = [];
  private readonly timers = new Map<string, { due: number; cancel: () => void }>();
  private readonly failures = new Map<string, number>();
  private running = 0;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];
  private scheduled = false;

  constructor(
    private readonly handler: (key: string) => Promise<void>,
    private readonly deps: { clock: Clock; log: Logger; concurrency?: number; maxBackoffMs?: number },
  ) {}

  add(key: string): void {
    if (this.stopped || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (!this.processing.has(key)) this.order.push(key);
    this.kick();
  }

  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    if (ms <= 0) return this.add(key);
    const due = this.deps.clock.now() + ms;
    const existing = this.timers.get(key);
    if (existing && existing.due <= due) return;
    existing?.cancel();
    const cancel = this.deps.clock.setTimer(ms, () => {
      this.timers.delete(key);
      this.add(key);
    });
    this.timers.set(key, { due, cancel });
  }

  /** Resolves when nothing is queued or running (timers may still be pending). */
  idle(): Promise<void> {
    if (this.order.length === 0 && this.running === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
    this.order.length = 0;
    this.dirty.clear();
    this.failures.clear();
  }

  /** Consecutive failures of a key (0 once it succeeded, or after stop). */
  failureCount(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  private kick(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    const limit = this.deps.concurrency ?? 4;
    while (!this.stopped && this.running < limit && this.order.length > 0) {
      const key = this.order.shift()!;
      this.dirty.delete(key);
      this.processing.add(key);
      this.running++;
      void this.run(key);
    }
    if (this.order.length === 0 && this.running === 0) {
      const ws = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of ws) w();
    }
  }

  private async run(key: string): Promise<void> {
    try {
      await this.handler(key);
      this.failures.delete(key);
    } catch (err) {
      // A queue that is stopping retries nothing and keeps no counter behind.
      if (this.stopped) return;
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      const delay = Math.min(10 * 2 ** n, this.deps.maxBackoffMs ?? 5000);
      this.deps.log.warn({ key, err, attempt: n, retryInMs: delay }, "sync failed; retrying");
      this.addAfter(key, delay);
    } finally {
      this.processing.delete(key);
      this.running--;
      if (this.dirty.has(key)) this.order.push(key);
      this.pump();
    }
  }
}
