import type { Clock } from "../../lib/clock.js";
import type { HealthConfig } from "../../model/objects.js";
import { runProbe, type ProbeResult, type ProbeTarget } from "./probe.js";

export type Health = "starting" | "healthy" | "unhealthy";

/** First probe soon after start (not a full interval later), so a healthy task converges fast. */
const FIRST_PROBE_MAX_MS = 250;
/**
 * Until the first success, probe this often (docker's start interval): a task that needs a
 * second to listen is healthy a moment later, not a whole interval (30 s by default) later.
 */
const STARTING_PROBE_MAX_MS = 500;

/**
 * Probes a running task on its interval. Failures inside the start period do not count (until
 * the first success ends it); `retries` consecutive failures make the task unhealthy. Before the
 * first success probes run faster, but a failure counts at most once per interval, so
 * "retries × interval" still bounds how long a task may take to become healthy.
 */
export class HealthMonitor {
  private cancelTimer: () => void = () => undefined;
  private stopped = false;
  private failures = 0;
  private health: Health = "starting";
  private inStartPeriod: boolean;
  private lastCountedFailureAt: number;

  constructor(
    private readonly cfg: HealthConfig,
    private readonly target: ProbeTarget,
    private readonly startedAt: number,
    private readonly clock: Clock,
    private readonly onChange: (health: Health, last: ProbeResult) => void,
    private readonly probe: typeof runProbe = runProbe,
  ) {
    this.inStartPeriod = cfg.startPeriodMs > 0;
    // The first failure counts as soon as a probe fails (as with docker's first check).
    this.lastCountedFailureAt = startedAt - cfg.intervalMs;
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
    } else if (!this.inStartPeriod && (this.health !== "starting" || now - this.lastCountedFailureAt >= this.cfg.intervalMs)) {
      this.failures++;
      this.lastCountedFailureAt = now;
      if (this.failures >= this.cfg.retries) next = "unhealthy";
    }
    if (next !== this.health) {
      this.health = next;
      this.onChange(next, result);
    }
    if (next === "unhealthy") return;
    this.schedule(next === "starting" ? Math.min(this.cfg.intervalMs, STARTING_PROBE_MAX_MS) : this.cfg.intervalMs);
  }
}
