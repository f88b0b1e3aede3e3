import { InterceptingCall, status as grpcStatus, type Interceptor } from "@grpc/grpc-js";
import { ConsecutiveBreaker, circuitBreaker, handleWhen, noop, type CircuitBreakerPolicy, type IDisposable } from "cockatiel";
import { Etcd3, isRecoverableError, type IOptions } from "etcd3";

/**
 * How often each etcd member is asked for its status, and how long it may take to answer. A
 * member that does not answer within the deadline, or answers without a raft leader, while another
 * member answered a later probe, is *down*:
 * new calls go to the other members and the calls still waiting on it (a watch stream, a
 * transaction) are cancelled with UNAVAILABLE. A cut-off member is thus abandoned within about
 * PROBE_INTERVAL_MS + PROBE_DEADLINE_MS (~1 s) instead of each call waiting for its own deadline
 * (5 s for the store) and gRPC keepalive taking 7 s to notice a dead watch.
 *
 * Why probes rather than the etcd3 client's circuit breaker alone: the breaker learns only from
 * calls that failed, so the first calls sent to a silent member all wait their full deadline, and
 * a watch stream on it never fails at all (it just stops bringing events).
 */
export const PROBE_INTERVAL_MS = 300;
export const PROBE_DEADLINE_MS = 700;
/**
 * A unary call (a transaction, a read) still waiting this long when the probes see etcd elect a
 * new raft leader is cancelled as UNAVAILABLE. A proposal caught in a leader change is often
 * never answered: etcd holds the request until its deadline (5 s for the store) although the new
 * leader took over in about a second. Its outcome is unknown either way, and callers say so; a
 * call younger than this is likely to be answered by the new leader.
 */
export const STUCK_AFTER_ELECTION_MS = 500;

export interface EndpointHealthOptions {
  endpoints: string[];
  /** How the probes reach the members (TLS credentials, grpc options): the client's own. */
  clientOptions: Partial<IOptions>;
  intervalMs?: number;
  deadlineMs?: number;
  /** Told when a member goes down or comes back (for logs and tests). */
  onChange?: (endpoint: string, up: boolean, reason: string) => void;
}

interface Endpoint {
  url: string;
  probe: Etcd3;
  up: boolean;
  /** When a probe sent at that time was last answered with a raft leader. */
  lastOkSentAt: number;
  /** Calls in flight on this member, to cancel when it goes down. */
  /** Calls in flight on this member, with when they started and whether they are a stream. */
  calls: Map<InterceptingCall, { startedAt: number; stream: boolean }>;
  breaker: CircuitBreakerPolicy | undefined;
  isolation: IDisposable | undefined;
}

/**
 * The health of each member of one etcd client's endpoint list, and the two hooks that act on it:
 * a per-host fault policy (a down member is skipped as if its circuit were open) and call options
 * (every call is registered with the member it went to, so it can be cancelled).
 *
 * The client's connection pool runs each call inside the host policy's `execute`, synchronously
 * up to the gRPC call's creation (etcd3's ConnectionPool.withConnection → runServiceCall); the
 * policy notes the host there and the call options' interceptor reads it.
 */
export class EndpointHealth {
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly intervalMs: number;
  private readonly deadlineMs: number;
  private current: Endpoint | undefined;
  /** etcd's raft leader (member id) as the probes last saw it. */
  private raftLeader: string | undefined;
  private closed = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly opts: EndpointHealthOptions) {
    this.intervalMs = opts.intervalMs ?? PROBE_INTERVAL_MS;
    this.deadlineMs = opts.deadlineMs ?? PROBE_DEADLINE_MS;
    for (const url of opts.endpoints) {
      const probe = new Etcd3({
        ...opts.clientOptions,
        hosts: [url],
        // One member, no retries: a probe is an observation, not a call that must succeed.
        faultHandling: { host: () => noop, global: noop },
        defaultCallOptions: () => ({ deadline: Date.now() + this.deadlineMs }),
      });
      // Keyed by the URL as given: etcd3's pool passes each `hosts` entry, unchanged, to `faultHandling.host`.
      this.endpoints.set(url, { url, probe, up: true, lastOkSentAt: 0, calls: new Map(), breaker: undefined, isolation: undefined });
    }
  }

  /** Starts probing every member. */
  start(): void {
    for (const e of this.endpoints.values()) this.probeLoop(e);
  }

  /** Which members answer now (by URL). */
  upEndpoints(): string[] {
    return [...this.endpoints.values()].filter((e) => e.up).map((e) => e.url);
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const e of this.endpoints.values()) e.probe.close();
  }

  /**
   * The fault policy of one host of the client's pool: etcd3's own default (a breaker that opens
   * after 3 consecutive recoverable failures, half-open after 5 s), isolated while the member is
   * down. Isolation makes the pool try the next member without sending anything.
   */
  hostPolicy(url: string): CircuitBreakerPolicy {
    const breaker = circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 5_000, breaker: new ConsecutiveBreaker(3) });
    const e = this.endpoints.get(url);
    if (!e) return breaker;
    e.breaker = breaker;
    if (!e.up) this.applyIsolation();
    const execute = breaker.execute.bind(breaker);
    breaker.execute = (fn, signal) =>
      execute((ctx) => {
        this.current = e;
        try {
          return fn(ctx);
        } finally {
          this.current = undefined;
        }
      }, signal);
    return breaker;
  }

  /** An interceptor that registers the call being created with the member the pool chose for it. */
  interceptor(): Interceptor | undefined {
    const e = this.current;
    if (!e) return undefined;
    return (options, nextCall) => {
      const call: InterceptingCall = new InterceptingCall(nextCall(options), {
        start: (metadata, _listener, next) =>
          next(metadata, {
            onReceiveStatus: (status, nextStatus) => {
              e.calls.delete(call);
              nextStatus(status);
            },
          }),
      });
      e.calls.set(call, { startedAt: Date.now(), stream: options.method_definition.requestStream || options.method_definition.responseStream });
      return call;
    };
  }

  private probeLoop(e: Endpoint): void {
    if (this.closed) return;
    void this.probeOnce(e).then(() => {
      if (this.closed) return;
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.probeLoop(e);
      }, this.intervalMs);
      t.unref();
      this.timers.add(t);
    });
  }

  private async probeOnce(e: Endpoint): Promise<void> {
    const sentAt = Date.now();
    let reason: string | undefined;
    /** Refused or reset at once: a fact about that member, not about this process's timing. */
    let definite = false;
    try {
      const st = await e.probe.maintenance.status();
      // A member without a raft leader (a minority side, an election) cannot serve a write or a
      // linearizable read: as good as gone until it has one.
      if (st.leader === "0" || !st.leader) reason = "no raft leader";
      else this.noteRaftLeader(st.leader);
    } catch (err) {
      reason = (err as Error).message;
      definite = Date.now() - sentAt < this.deadlineMs / 2;
    }
    if (this.closed) return;
    const up = reason === undefined;
    if (up) e.lastOkSentAt = sentAt;
    // A timeout or a member without a raft leader counts only relative to the others: another
    // member answered a probe sent after this one. When none did, the fault is more likely here
    // (this process stalled past the deadlines — a GC, a loaded host — or this host is cut off, or
    // etcd is electing a leader): nothing is learnt. A refused connection counts at once.
    else if (!definite && ![...this.endpoints.values()].some((o) => o !== e && o.lastOkSentAt >= sentAt)) return;
    if (up === e.up) return;
    e.up = up;
    this.opts.onChange?.(e.url, up, reason ?? "answers");
    this.applyIsolation();
    if (!up) {
      // Calls waiting on a silent member would wait their whole deadline; a watch stream on it
      // would never end. UNAVAILABLE: a write's outcome is unknown, and callers say so.
      for (const call of [...e.calls.keys()]) call.cancelWithStatus(grpcStatus.UNAVAILABLE, `etcd member ${e.url} stopped answering (${reason})`);
      e.calls.clear();
    }
  }

  /** A new raft leader: unary calls that were waiting across the change are cancelled (STUCK_AFTER_ELECTION_MS). */
  private noteRaftLeader(leader: string): void {
    const previous = this.raftLeader;
    this.raftLeader = leader;
    if (previous === undefined || previous === leader) return;
    const before = Date.now() - STUCK_AFTER_ELECTION_MS;
    for (const e of this.endpoints.values()) {
      for (const [call, c] of [...e.calls]) {
        if (c.stream || c.startedAt > before) continue;
        e.calls.delete(call);
        call.cancelWithStatus(grpcStatus.UNAVAILABLE, "etcd elected a new leader while this call waited: it may or may not have been applied");
      }
    }
  }

  /** Down members are isolated, unless every member is down: then every member is tried, as without probes. */
  private applyIsolation(): void {
    const all = [...this.endpoints.values()];
    const anyUp = all.some((e) => e.up);
    for (const e of all) {
      const isolate = anyUp && !e.up && e.breaker !== undefined;
      if (isolate && !e.isolation) e.isolation = e.breaker!.isolate();
      else if (!isolate && e.isolation) {
        e.isolation.dispose();
        e.isolation = undefined;
      }
    }
  }
}
