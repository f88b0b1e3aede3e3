import type { Clock } from "../../src/lib/clock.js";

/** A clock that moves only when told to; timers fire in due order inside advance(). */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private timers = new Map<number, { due: number; fn: () => void }>();

  constructor(start = 1_800_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): () => void {
    const id = ++this.seq;
    this.timers.set(id, { due: this.t + Math.max(0, ms), fn });
    return () => void this.timers.delete(id);
  }

  sleep(ms: number): Promise<void> {
    return new Promise((r) => this.setTimer(ms, r));
  }

  /** Moves time forward by ms, firing every timer that comes due, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { due: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].due <= end && (!next || e[1].due < next[1].due)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].due);
      next[1].fn();
      await settle();
    }
    this.t = end;
    await settle();
  }

  /** Moves time without firing timers, as a stalled process sees it; the next advance fires them late. */
  jump(ms: number): void {
    this.t += ms;
  }

  pendingTimers(): number {
    return this.timers.size;
  }
}

/** Lets queued microtasks and immediates run (store watchers, queues, the scheduler's batch). */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}
