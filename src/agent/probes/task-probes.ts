import type { Clock } from "../../lib/clock.js";
import type { ProbeConfig, TaskSpec } from "../../model/objects.js";
import { HealthMonitor, type Health } from "./health-monitor.js";
import { ProbeLoop } from "./probe-loop.js";
import type { ProbeTarget, ProbeResult, runProbe } from "./probe.js";

export interface ProbeEvents {
  /** The docker-style health check changed (it gates traffic and liveness, as in Swarm). */
  health(h: Health, last: ProbeResult): void;
  /** The task may (or may no longer) take traffic. */
  ready(ready: boolean, why: string): void;
  /** Liveness, startup or health failed: the task is to be restarted through its restart policy. */
  failed(why: string): void;
}

/**
 * With no readiness probe and no health check, a task of a service with (TCP or HTTP) service
 * ports is ready once its $PORT accepts TCP connections (a slow starter never gets traffic early). Checked every
 * 50 ms: a loopback connect costs ~0.1 ms, and a rolling update waits on this for every slot.
 */
const PORT_GATE: Omit<ProbeConfig, "check"> = { initialDelayMs: 0, periodMs: 50, timeoutMs: 1000, successThreshold: 1, failureThreshold: 1_000_000 };

/**
 * Every probe of one running task: startup first (it holds the others back until it passes
 * once), then liveness (failure restarts), readiness (failure takes the task out of the pools,
 * success brings it back), and the docker-style health check. Emits readiness changes and
 * failures; the executor turns them into reports and stops.
 */
export class TaskProbes {
  private readonly loops: { stop(): void }[] = [];
  private stopped = false;
  private readiness: boolean | undefined;
  private healthy: boolean | undefined;
  private portOpen: boolean | undefined;
  private lastReady: boolean | undefined;

  constructor(
    private readonly spec: TaskSpec,
    private readonly target: ProbeTarget,
    private readonly startedAt: number,
    private readonly clock: Clock,
    private readonly events: ProbeEvents,
    private readonly probe?: typeof runProbe,
  ) {}

  start(): void {
    const startup = this.spec.probes?.startup;
    if (!startup) return this.startMain();
    const loop = this.loop(startup, (pass, last) => {
      loop.stop();
      if (pass) this.startMain();
      else this.events.failed(`startup probe failed: ${last.output}`);
    });
  }

  stop(): void {
    this.stopped = true;
    for (const l of this.loops) l.stop();
  }

  private startMain(): void {
    if (this.stopped) return;
    const { probes, health, targets } = this.spec;
    if (probes?.liveness) {
      this.loop(probes.liveness, (pass, last) => {
        if (!pass) this.events.failed(`liveness probe failed: ${last.output}`);
      });
    }
    if (probes?.readiness) {
      this.loop(probes.readiness, (pass, last) => {
        this.readiness = pass;
        this.emitReady(pass ? "readiness probe passed" : `readiness probe failed: ${last.output}`);
      });
    }
    if (health) {
      const m = new HealthMonitor(health, this.target, this.startedAt, this.clock, (h, last) => {
        if (this.stopped) return;
        this.events.health(h, last);
        this.healthy = h === "healthy";
        this.emitReady(h);
        if (h === "unhealthy") this.events.failed(`unhealthy: ${last.output}`);
      }, this.probe);
      this.loops.push(m);
      m.start();
    }
    if (!probes?.readiness && !health) {
      if (targets?.length && !this.spec.udpOnly && this.target.port !== undefined) {
        const gate = this.loop({ ...PORT_GATE, check: { kind: "tcp" } }, (pass) => {
          if (!pass) return;
          gate.stop();
          this.portOpen = true;
          this.emitReady("accepting connections");
        });
      } else {
        this.portOpen = true;
        this.emitReady("running");
      }
    }
  }

  private loop(cfg: ProbeConfig, onChange: (pass: boolean, last: ProbeResult) => void): ProbeLoop {
    const l = new ProbeLoop(cfg, this.target, this.clock, (pass, last) => {
      if (!this.stopped) onChange(pass, last);
    }, this.probe);
    this.loops.push(l);
    l.start();
    return l;
  }

  /** Ready = the readiness probe if there is one, else the health check, else the port gate. */
  private emitReady(why: string): void {
    const ready = this.spec.probes?.readiness ? this.readiness === true : this.spec.health ? this.healthy === true : this.portOpen === true;
    if (ready === this.lastReady) return;
    this.lastReady = ready;
    this.events.ready(ready, why);
  }
}
