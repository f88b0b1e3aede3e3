import { connect } from "node:net";

/** What a connection attempt to the leader's listener found. */
export type ProbeResult = "accepted" | "refused" | "no-answer";

/**
 * Opens a TCP connection to `addr` (host:port) and closes it at once. `refused` only for
 * ECONNREFUSED: the host answered that nothing listens there — what a killed process's port says
 * at once. A timeout, an unreachable host or any other error is `no-answer`: a partition or a
 * slow host looks like that, and must not be taken for a death.
 */
export function probeListener(addr: string, timeoutMs: number): Promise<ProbeResult> {
  const i = addr.lastIndexOf(":");
  const host = addr.slice(0, i).replace(/^\[|\]$/g, "");
  const port = Number(addr.slice(i + 1));
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (r: ProbeResult): void => {
      socket.destroy();
      resolve(r);
    };
    socket.setTimeout(timeoutMs, () => done("no-answer"));
    socket.once("connect", () => done("accepted"));
    socket.once("error", (err: NodeJS.ErrnoException) => done(err.code === "ECONNREFUSED" ? "refused" : "no-answer"));
  });
}

/** Consecutive refusals after which the leader is taken for dead. */
export const REFUSALS_TO_REVOKE = 3;

/**
 * Decides, from a follower's probes of one leader term, when the leader is dead for sure: it was
 * seen accepting connections in this term (its listener exists at that address, so a refusal is
 * not a firewall or a wrong address), and then refused REFUSALS_TO_REVOKE times in a row, with no
 * accepted or unanswered probe between. Anything else keeps the lease to expire by itself.
 */
export class DeadLeaderDetector {
  private term: string | undefined;
  private seenAlive = false;
  private refusals = 0;

  /** Feeds one probe of the leader holding `leaseId`; true when its lease should be revoked now. */
  observe(leaseId: string, result: ProbeResult): boolean {
    if (leaseId !== this.term) {
      this.term = leaseId;
      this.seenAlive = false;
      this.refusals = 0;
    }
    if (result === "accepted") {
      this.seenAlive = true;
      this.refusals = 0;
      return false;
    }
    if (result === "no-answer") {
      this.refusals = 0;
      return false;
    }
    this.refusals++;
    if (!this.seenAlive || this.refusals < REFUSALS_TO_REVOKE) return false;
    // Once per term: the revoke deletes the leader key; a failed revoke is retried by the next run.
    this.refusals = 0;
    return true;
  }
}
