import type { Clock } from "../lib/clock.js";
import { BatonError } from "../lib/errors.js";
import type { Logger } from "../lib/log.js";
import { Dispatcher, type OpenSecret } from "../dispatcher/dispatcher.js";
import { Orchestrator } from "../orchestrator/controller.js";
import { Scheduler } from "../scheduler/scheduler.js";
import { Updater } from "../updater/controller.js";
import type { Fence, Store } from "../store/store.js";
import { fencedStore } from "./fenced-store.js";

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

/** Beside an agent's silence detection: its reconnection and two leadership ticks of publication. */
const NEW_TERM_RECONNECT_MS = 2000;

/** The controllers of one term of leadership: made fresh each term (their queues do not restart). */
interface Controllers {
  orchestrator: Orchestrator;
  scheduler: Scheduler;
  updater: Updater;
}

/**
 * Starts and stops the controllers. With one manager (the SQLite store) it is always the leader:
 * `start()` starts everything. With several managers on etcd, `start()` starts only what every
 * manager does (agent sessions: registrations, status writes, assignment streams); the
 * leadership calls `lead(fence)` and `stopLeading()`, and every controller write then carries
 * the term's fence.
 */
export class Manager {
  readonly dispatcher: Dispatcher;
  private current: Controllers | undefined;
  private fence: Fence | undefined;
  private running = false;

  constructor(private readonly deps: ManagerDeps) {
    // Node liveness decisions (marking nodes down) are the leader's: fenced like the controllers.
    this.dispatcher = new Dispatcher({
      store: deps.store,
      decisions: fencedStore(deps.store, () => this.fenceOrRefuse()),
      clock: deps.clock,
      log: this.child("dispatcher"),
      ...(deps.openSecret ? { openSecret: deps.openSecret } : {}),
      ...(deps.heartbeatPeriodMs ? { heartbeatPeriodMs: deps.heartbeatPeriodMs } : {}),
      ...(deps.heartbeatGraceMs ? { heartbeatGraceMs: deps.heartbeatGraceMs } : {}),
    });
  }

  get orchestrator(): Orchestrator | undefined {
    return this.current?.orchestrator;
  }

  get scheduler(): Scheduler | undefined {
    return this.current?.scheduler;
  }

  get updater(): Updater | undefined {
    return this.current?.updater;
  }

  isLeading(): boolean {
    return this.current !== undefined;
  }

  /** One manager (SQLite, or etcd without a leadership): sessions and controllers, unfenced. */
  start(): void {
    this.startSessions();
    this.lead(undefined);
  }

  /** What every manager runs: agent sessions. */
  startSessions(): void {
    if (this.running) return;
    this.running = true;
    this.dispatcher.start();
  }

  /** Becomes leader for a term: fresh controllers, their writes fenced on `fence` (when given). */
  lead(fence: Fence | undefined): void {
    if (this.current) this.stopLeading();
    this.fence = fence;
    // The term's own fence, captured: a write still in flight from an earlier term of this same
    // manager carries that term's fence and is refused.
    const store = fence ? fencedStore(this.deps.store, () => fence) : this.deps.store;
    const { clock } = this.deps;
    this.current = {
      orchestrator: new Orchestrator({ store, clock, log: this.child("orchestrator") }),
      scheduler: new Scheduler({ store, clock, log: this.child("scheduler"), ...(this.deps.maxOpsPerCommit ? { maxOpsPerCommit: this.deps.maxOpsPerCommit } : {}) }),
      updater: new Updater({ store, clock, log: this.child("updater") }),
    };
    // A new term of several managers (fenced) usually follows a lost manager, whose agents are
    // still finding another one: they notice its silence after 3 heartbeat periods + 1 s (the
    // session client), reconnect, and their new manager publishes them at its next leadership
    // tick, which this leader reads at its own. Without this allowance a faster failover would
    // mark such nodes down — and replace their running tasks — before they are back.
    this.dispatcher.startLiveness(fence ? this.reconnectAllowanceMs() : 0);
    const controllers = this.current;
    const start = (): void => {
      if (this.current !== controllers) return;
      controllers.orchestrator.start();
      controllers.scheduler.start();
      controllers.updater.start();
    };
    // A new term on a shared store: the cache may still be behind writes the last leader got
    // acknowledged (a chunk of an update step, a task create). Controllers planning from that view
    // could create a slot's task a second time, so they start only once the cache caught up.
    if (fence && this.deps.store.sync) void this.catchUp(controllers).then(start);
    else start();
  }

  /** How long an agent of a lost manager needs to be heard through another: its silence detection, reconnection and publication. */
  private reconnectAllowanceMs(): number {
    return this.dispatcher.heartbeatPeriodMs * 3 + NEW_TERM_RECONNECT_MS;
  }

  /**
   * Another manager was lost (its lease key gone) while this one leads: the agents whose sessions
   * it held are finding another manager. Their nodes get the same allowance as at a new term, so
   * a lost follower does not get its agents' nodes marked down and their running tasks replaced.
   */
  managerLost(sessions: Iterable<string>): void {
    if (this.current) this.dispatcher.allowReconnect(sessions, this.reconnectAllowanceMs());
  }

  /** Waits until the store's cache holds every write committed before the term began (retried while etcd does not answer, until the term ends). */
  private async catchUp(controllers: Controllers): Promise<void> {
    for (let attempt = 0; this.current === controllers; attempt++) {
      try {
        await this.deps.store.sync!();
        return;
      } catch (err) {
        this.deps.log.warn({ err: (err as Error).message, attempt }, "new term: the store did not catch up yet; controllers wait");
        await this.deps.clock.sleep(200);
      }
    }
  }

  /** Idempotent. Stops the controllers and node liveness decisions; sessions go on. */
  stopLeading(): void {
    const c = this.current;
    this.current = undefined;
    this.fence = undefined;
    this.dispatcher.stopLiveness();
    c?.orchestrator.stop();
    c?.scheduler.stop();
    c?.updater.stop();
  }

  /** Idempotent. The controllers stop first, so nothing is restarted while tasks are stopped. */
  stopControllers(): void {
    this.stopLeading();
  }

  stop(): void {
    this.stopLeading();
    if (!this.running) return;
    this.running = false;
    this.dispatcher.stop();
  }

  private fenceOrRefuse(): Fence | undefined {
    if (this.current && this.fence === undefined) return undefined;
    if (!this.fence) throw new BatonError("NOT_LEADER", "this manager does not lead: controller writes are refused");
    return this.fence;
  }

  private child(component: string): Logger {
    return this.deps.log.child({ component });
  }
}
