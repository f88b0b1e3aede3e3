import type { Clock } from "../lib/clock.js";
import type { Logger } from "../lib/log.js";
import type { Acquire } from "./activator.js";
import type { ServicePool } from "./pool.js";
import type { ListenerSpec } from "./types.js";

/** What every listener kind (tcp, udp, http) gets from the Mesh. */
export interface ListenerDeps {
  clock: Clock;
  log: Logger;
  /** The pool of a service (created empty on first use). */
  pool(serviceId: string): ServicePool;
  /** How a new connection/request gets its backend (the activator around the balancer). */
  acquire: Acquire;
}

/** A bound listener. close() stops accepting; traffic already in flight carries on. */
export interface ListenerHandle {
  readonly spec: ListenerSpec;
  /** The bound port (differs from spec.port when that is 0). */
  readonly port: number;
  close(): Promise<void>;
}

/** Connect-level failures: nothing reached the backend's application, another backend may be tried. */
const CONNECT_FAILURES = new Set(["ECONNREFUSED", "ECONNRESET", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "EADDRNOTAVAIL", "EPIPE", "UND_ERR_CONNECT_TIMEOUT", "UND_ERR_SOCKET", "UND_ERR_CLOSED", "UND_ERR_DESTROYED"]);

export function isConnectFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && CONNECT_FAILURES.has(code);
}

/** At most this many backends are tried for one connection/request (the first + 2 retries). */
export const MAX_ATTEMPTS = 3;
