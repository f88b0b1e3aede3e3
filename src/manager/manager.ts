import type { Clock } from "../lib/clock.js";
import type { Logger } from "../lib/log.js";
import { Dispatcher, type OpenSecret } from "../dispatcher/dispatcher.js";
import { Orchestrator } from "../orchestrator/controller.js";
import { Scheduler } from "../scheduler/scheduler.js";
import { Updater } from "../updater/controller.js";
import type { Store } from "../store/store.js";

export interface ManagerDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  heartbeatPeriodMs?: number;
  heartbeatGraceMs?: number;
  /** Most task writes per scheduler commit; the etcd store's per-transaction limit caps it. */
  maxOpsPerCommit?: number;
  /** Opens secrets for the dispatcher's assignments (src/secrets/data-key.ts). */
  openSecret?: OpenSecret;
}

/**
 * Starts and stops the controllers. With one manager (the SQLite store) it is always the
 * leader; the etcd store adds an election in front of start().
 */
export class Manager {
  readonly dispatcher: Dispatcher;
  readonly orchestrator: Orchestrator;
  readonly scheduler: Scheduler;
  readonly updater: Updater;
  private running = false;

  constructor(deps: ManagerDeps) {
    const child = (component: string): Logger => deps.log.child({ component });
    this.dispatcher = new Dispatcher({ store: deps.store, clock: deps.clock, log: child("dispatcher"), ...(deps.openSecret ? { openSecret: deps.openSecret } : {}), ...(deps.heartbeatPeriodMs ? { heartbeatPeriodMs: deps.heartbeatPeriodMs } : {}), ...(deps.heartbeatGraceMs ? { heartbeatGraceMs: deps.heartbeatGraceMs } : {}) });
    this.orchestrator = new Orchestrator({ store: deps.store, clock: deps.clock, log: child("orchestrator") });
    this.scheduler = new Scheduler({ store: deps.store, clock: deps.clock, log: child("scheduler"), ...(deps.maxOpsPerCommit ? { maxOpsPerCommit: deps.maxOpsPerCommit } : {}) });
    this.updater = new Updater({ store: deps.store, clock: deps.clock, log: child("updater") });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.dispatcher.start();
    this.orchestrator.start();
    this.scheduler.start();
    this.updater.start();
  }

  /** Idempotent. The controllers stop first, so nothing is restarted while tasks are stopped. */
  stopControllers(): void {
    this.orchestrator.stop();
    this.scheduler.stop();
    this.updater.stop();
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.stopControllers();
    this.dispatcher.stop();
  }
}
