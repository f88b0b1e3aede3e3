import type { Clock } from "../../lib/clock.js";
import type { ProbeConfig } from "../../model/objects.js";
import { runProbe, type ProbeResult, type ProbeTarget } from "./probe.js";

/** Until a probe first passes, it runs at most this far apart, so a ready task is seen quickly. */
const UNTIL_FIRST_PASS_MS = 250;

/**
 * Runs one Kubernetes-style probe on the clock: after the initial delay, every period; it passes
 * after `successThreshold` consecutive successes and fails after `failureThreshold` consecutive
 * failures. Until the first pass it probes faster, but counts at most one failure per period, so
 * "failureThreshold × period" still bounds how long a task may take.
 */
export class ProbeLoop {
  private cancelTimer: () => void = () => undefined;
  private stopped = false;
  private successes = 0;
  private failures = 0;
  private passing: boolean | undefined;
  private everPassed = false;
  private lastCountedFailureAt: number;

  constructor(
    private readonly cfg: ProbeConfig,
    private readonly target: ProbeTarget,
    private readonly clock: Clock,
    private readonly onChange: (passing: boolean, last: ProbeResult) => void,
    private readonly probe: typeof runProbe = runProbe,
  ) {
    this.lastCountedFailureAt = clock.now() - cfg.periodMs;
  }

  start(): void {
    this.schedule(this.cfg.initialDelayMs);
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
    if (result.ok) {
      this.failures = 0;
      this.successes++;
      if (this.passing !== true && this.successes >= this.cfg.successThreshold) this.set(true, result);
    } else if (this.everPassed || now - this.lastCountedFailureAt >= this.cfg.periodMs) {
      this.lastCountedFailureAt = now;
      this.successes = 0;
      this.failures++;
      if (this.passing !== false && this.failures >= this.cfg.failureThreshold) this.set(false, result);
    }
    this.schedule(this.everPassed ? this.cfg.periodMs : Math.min(this.cfg.periodMs, UNTIL_FIRST_PASS_MS));
  }

  private set(passing: boolean, last: ProbeResult): void {
    this.passing = passing;
    if (passing) this.everPassed = true;
    this.onChange(passing, last);
  }
}
