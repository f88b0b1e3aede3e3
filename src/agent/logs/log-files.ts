import { copyFileSync, existsSync, mkdirSync, openSync, closeSync, readSync, rmSync, statSync, truncateSync, fstatSync } from "node:fs";
import { join } from "node:path";

/**
 * Per-task log files: the task appends to `<id>.log` itself (O_APPEND). When it passes the cap
 * the file is copied to `<id>.log.1` and truncated in place (copytruncate), which works while the
 * task keeps its descriptor open.
 */
export class LogFiles {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  pathOf(taskId: string): string {
    return join(this.dir, `${taskId}.log`);
  }

  rotateIfNeeded(taskId: string, maxBytes: number): boolean {
    const p = this.pathOf(taskId);
    try {
      if (statSync(p).size <= maxBytes) return false;
      copyFileSync(p, `${p}.1`);
      truncateSync(p, 0);
      return true;
    } catch {
      return false;
    }
  }

  remove(taskId: string): void {
    const p = this.pathOf(taskId);
    rmSync(p, { force: true });
    rmSync(`${p}.1`, { force: true });
  }

  /** The last `tail` lines (all when undefined), rotated file first, and the offset read to. */
  readTail(taskId: string, tail?: number): { lines: string[]; offset: number } {
    const p = this.pathOf(taskId);
    const chunks: string[] = [];
    for (const f of [`${p}.1`, p]) if (existsSync(f)) chunks.push(readWhole(f));
    const text = chunks.join("");
    const offset = existsSync(p) ? statSync(p).size : 0;
    const lines = text.split("\n");
    if (lines.at(-1) === "") lines.pop();
    return { lines: tail === undefined ? lines : tail <= 0 ? [] : lines.slice(-tail), offset };
  }

  /**
   * Reads what was appended since `offset`. When the file shrank (rotation) it restarts at 0.
   * Returns complete lines; a partial last line waits for the next call.
   */
  readFrom(taskId: string, offset: number, partial: string): { lines: string[]; offset: number; partial: string } {
    const p = this.pathOf(taskId);
    let fd: number;
    try {
      fd = openSync(p, "r");
    } catch {
      return { lines: [], offset, partial };
    }
    try {
      const size = fstatSync(fd).size;
      if (size < offset) offset = 0;
      if (size === offset) return { lines: [], offset, partial };
      const buf = Buffer.alloc(Math.min(size - offset, 1 << 20));
      const n = readSync(fd, buf, 0, buf.length, offset);
      const text = partial + buf.subarray(0, n).toString("utf8");
      const lines = text.split("\n");
      const rest = lines.pop() ?? "";
      return { lines, offset: offset + n, partial: rest };
    } finally {
      closeSync(fd);
    }
  }
}

function readWhole(path: string): string {
  // Log files are capped (rotation), so reading one whole is bounded.
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(size);
    readSync(fd, buf, 0, size, 0);
    return buf.toString("utf8");
  } finally {
    closeSync(fd);
  }
}


