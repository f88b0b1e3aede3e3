/**
 * The last `size` latency samples in a ring; percentiles are computed on demand (stats() is
 * called rarely, record() on every request, so record() is one store and stats() sorts).
 */
export class LatencyReservoir {
  private readonly samples: Float64Array;
  private count = 0;

  constructor(size = 1024) {
    this.samples = new Float64Array(size);
  }

  record(ms: number): void {
    this.samples[this.count++ % this.samples.length] = ms;
  }

  /** Nearest-rank percentile (0 < p ≤ 100) of what the ring holds; undefined when empty. */
  percentiles(...ps: number[]): (number | undefined)[] {
    const n = Math.min(this.count, this.samples.length);
    if (n === 0) return ps.map(() => undefined);
    const sorted = this.samples.slice(0, n).sort();
    return ps.map((p) => round3(sorted[Math.min(n - 1, Math.ceil((p / 100) * n) - 1)] ?? 0));
  }
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;
