import type { Clock } from "../../lib/clock.js";
import type { HealthConfig } from "../../model/objects.js";
import { runProbe, type ProbeResult, type ProbeTarget } from "./probe.js";

export type Health = "starting" | "healthy" | "unhealthy";

/** First probe soon after start (not a full interval later), so a healthy task converges fast. */
const FIRST_PROBE_MAX_MS = 250;

/**
 * Probes a running task on its interval. Failures inside the start period do not count (until
 * the first success ends it); `retries` consecutive failures make the task unhealthy.
 */
export class HealthMonitor {
  private cancelTimer: () => void = () => undefined;
  private stopped = false;
  private failures = 0;
  private health: Health = "starting";
  private inStartPeriod: boolean;

  constructor(
    private readonly cfg: HealthConfig,
    private readonly target: ProbeTarget,
    private readonly startedAt: number,
    private readonly clock: Clock,
    private readonly onChange: (health: Health, last: ProbeResult) => void,
    private readonly probe: typeof runProbe = runProbe,
  ) {
    this.inStartPeriod = cfg.startPeriodMs > 0;
  }

  start(): void {
    this.schedule(Math.min(this.cfg.intervalMs, FIRST_PROBE_MAX_MS));
  }

  stop(): void {
    this.stopped = true;
    this.cancelTimer();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.cancelTimer = this.clock.setTimer(ms, () => void this.tick());
  }

  private async tick(): Promise<void> {
    const result = await this.probe(this.cfg.check, this.target, this.cfg.timeoutMs);
    if (this.stopped) return;
    const now = this.clock.now();
    if (this.inStartPeriod && (result.ok || now - this.startedAt >= this.cfg.startPeriodMs)) this.inStartPeriod = false;
    let next: Health = this.health;
    if (result.ok) {
      this.failures = 0;
      next = "healthy";
    } else if (!this.inStartPeriod) {
      this.failures++;
      if (this.failures >= this.cfg.retries) next = "unhealthy";
    }
    if (next !== this.health) {
      this.health = next;
      this.onChange(next, result);
    }
    if (next !== "unhealthy") this.schedule(this.cfg.intervalMs);
  }
}
