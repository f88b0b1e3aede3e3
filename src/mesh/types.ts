/** How a listener forwards: raw TCP streams, UDP datagrams, or HTTP/1.1 requests. */
export type MeshProtocol = "tcp" | "udp" | "http";

/** One ready task of a service, as the mesh reaches it. */
export interface Backend {
  /** The task id. */
  id: string;
  host: string;
  port: number;
  /**
   * Share of new traffic relative to the service's other backends; 0 = no new traffic.
   * @default 1
   */
  weight?: number;
}

/** A port the mesh listens on for one service. */
export interface ListenerSpec {
  /** Stable identity used to diff successive setListeners calls. */
  key: string;
  serviceId: string;
  /** "0.0.0.0" for a published port, or the service VIP (e.g. 127.77.0.5). */
  host: string;
  port: number;
  protocol: MeshProtocol;
  /**
   * Who may use this listener, by the peer's address (absent: everyone). A refused TCP/HTTP
   * connection is closed at once; a refused datagram is dropped.
   */
  admit?: (remoteAddress: string) => boolean;
}

export type BalanceMode = "round-robin" | "least-connections";

export interface ServicePolicy {
  /**
   * round-robin: smooth weighted round robin (nginx's). least-connections: fewest open
   * connections (L4) or outstanding requests (L7), relative to weight.
   * @default "round-robin"
   */
  balance: BalanceMode;
  /**
   * How long a new connection or request waits for a first ready backend before failing
   * (L7: 503, L4: close).
   * @default 5000
   */
  waitForBackendMs: number;
}

export const DEFAULT_POLICY: ServicePolicy = { balance: "round-robin", waitForBackendMs: 5000 };

export interface DrainResult {
  /** true: nothing was left in flight; false: the deadline passed and what was left was closed. */
  drained: boolean;
  /** L4 connections, UDP sessions and L7 requests cut at the deadline. */
  closedConnections: number;
}

export interface BackendStats {
  id: string;
  /** L7 requests, or L4 connections / UDP sessions, sent to this backend. */
  requests: number;
  /** Failed connects, resets and 5xx-free transport errors. */
  errors: number;
  /** L7 answers with a 5xx status. */
  serverErrors: number;
  /** Open L4 connections + UDP sessions + outstanding L7 requests. */
  active: number;
  /** L7: request arrival to response end; L4: connect time. Over the last 1024 samples. */
  p50Ms?: number;
  p99Ms?: number;
}

export interface ServiceStats {
  serviceId: string;
  backends: BackendStats[];
}
