import type { ServerResponse } from "node:http";

/**
 * Bytes a streaming response may have queued for a slow reader before the stream is ended with
 * SLOW_CONSUMER: enough for a burst of thousands of events, small next to the manager's memory.
 */
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/**
 * Writes to a long-lived response while respecting backpressure: once the reader has more than
 * `maxBuffered` bytes unread, `write` refuses (returns false) and the caller ends the stream with a
 * resumable error instead of queueing without bound.
 */
export class StreamWriter {
  private overflowed = false;

  constructor(
    readonly res: ServerResponse,
    private readonly maxBuffered = MAX_BUFFERED_BYTES,
  ) {}

  /** True when written; false once the reader is too far behind (nothing more is written). */
  write(chunk: string): boolean {
    if (this.overflowed || this.res.destroyed) return false;
    if (this.res.writableLength > this.maxBuffered) {
      this.overflowed = true;
      return false;
    }
    this.res.write(chunk);
    return true;
  }

  get isOverflowed(): boolean {
    return this.overflowed;
  }

  /**
   * Ends the stream with `last` once what is queued has drained (or at once if nothing is), and
   * closes the connection: a reader that fell behind reconnects anyway.
   */
  endAfterDrain(last: string): void {
    const finish = (): void => void this.res.end(last, () => this.res.socket?.end());
    if (this.res.writableLength > 0 && !this.res.destroyed) this.res.once("drain", finish);
    else finish();
  }
}
