import type { Clock } from "../../lib/clock.js";
import type { LogFiles } from "./log-files.js";

/** How often a followed log file is checked for new lines. */
const FOLLOW_POLL_MS = 100;

/** One open read of a task's log: lines arrive through the callback; `done` settles when it ends. */
export interface LogStream {
  done: Promise<void>;
  cancel(): void;
}

export interface LogReadOptions {
  /** The last lines to send first; all when undefined. */
  tail?: number;
  /** Keep sending new lines until cancelled. */
  follow: boolean;
}

/**
 * Reads this node's task log files: the last lines, then (follow) new complete lines every
 * 100 ms. While `isPaused()` (the reader is behind) nothing is read: the file is the buffer.
 */
export function readLocalLog(files: LogFiles, clock: Clock, taskId: string, opts: LogReadOptions, onLines: (lines: string[]) => void, isPaused?: () => boolean): LogStream {
  const first = files.readTail(taskId, opts.tail);
  if (first.lines.length) onLines(first.lines);
  if (!opts.follow) return { done: Promise.resolve(), cancel: () => undefined };
  let offset = first.offset;
  let partial = "";
  let stopped = false;
  let cancelTimer = (): void => undefined;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const poll = (): void => {
    if (stopped) return;
    if (!isPaused?.()) {
      const r = files.readFrom(taskId, offset, partial);
      offset = r.offset;
      partial = r.partial;
      if (r.lines.length) onLines(r.lines);
    }
    cancelTimer = clock.setTimer(FOLLOW_POLL_MS, poll);
  };
  cancelTimer = clock.setTimer(FOLLOW_POLL_MS, poll);
  return {
    done,
    cancel: () => {
      stopped = true;
      cancelTimer();
      finish();
    },
  };
}
