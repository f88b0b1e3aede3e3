import type { Clock } from "../../lib/clock.js";
import type { Task } from "../../model/objects.js";
import type { LogFiles } from "./log-files.js";

/** How often a followed log file is checked for new lines. */
const FOLLOW_POLL_MS = 100;

/** Reads this node's task log files for the API (the LogSource of `baton up`). */
export function localLogSource(files: LogFiles, clock: Clock): {
  tail(task: Task, lines?: number): { lines: string[]; cursor: unknown };
  follow(task: Task, cursor: unknown, onLines: (lines: string[]) => void, isPaused?: () => boolean): () => void;
} {
  return {
    tail(task, lines) {
      const r = files.readTail(task.id, lines);
      return { lines: r.lines, cursor: r.offset };
    },
    follow(task, cursor, onLines, isPaused) {
      let offset = typeof cursor === "number" ? cursor : 0;
      let partial = "";
      let cancel = (): void => undefined;
      const poll = (): void => {
        if (isPaused?.()) {
          cancel = clock.setTimer(FOLLOW_POLL_MS, poll);
          return;
        }
        const r = files.readFrom(task.id, offset, partial);
        offset = r.offset;
        partial = r.partial;
        if (r.lines.length) onLines(r.lines);
        cancel = clock.setTimer(FOLLOW_POLL_MS, poll);
      };
      poll();
      return () => cancel();
    },
  };
}
