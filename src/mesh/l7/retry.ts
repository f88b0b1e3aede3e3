import { isConnectFailure, MAX_ATTEMPTS } from "../listener.js";

/** RFC 9110 §9.2.2: repeating these has the same effect as sending them once. */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

/** What the proxy knows about one attempt when it fails. */
export interface AttemptOutcome {
  method: string;
  /** The request carries a body (a stream we cannot replay once read). */
  hasBody: boolean;
  /** The request was handed to a backend connection (headers and maybe body written). */
  sent: boolean;
  /** A response byte came back: the client has seen (or will see) this attempt's answer. */
  responded: boolean;
  /** Attempts made so far, this one included. */
  attempts: number;
  error: unknown;
}

/** A retry policy: may this failed attempt be repeated on another backend? */
export type RetryPolicy = (o: AttemptOutcome) => boolean;

/**
 * The default policy: only connect-level failures, never after a response byte, never beyond
 * MAX_ATTEMPTS. A request that never reached a backend connection is always safe to repeat;
 * one that was sent is repeated only if idempotent and without a body (the body stream is
 * spent). So a killed replica fails no GET, and a POST that may have run is not run twice.
 */
export const retryOnConnectFailure: RetryPolicy = (o) => {
  if (o.responded || o.attempts >= MAX_ATTEMPTS || !isConnectFailure(o.error)) return false;
  if (!o.sent) return true;
  return IDEMPOTENT.has(o.method) && !o.hasBody;
};

/** No retries (for tests and callers that want errors surfaced). */
export const neverRetry: RetryPolicy = () => false;
