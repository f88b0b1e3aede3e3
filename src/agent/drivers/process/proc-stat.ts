import { readFileSync } from "node:fs";

/**
 * Reads /proc/<pid>/stat: process state and start time (clock ticks since boot). The start time
 * tells a re-used pid from the process we started.
 */
export function readProcStat(pid: number): { state: string; startTime: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // comm (field 2) may hold spaces and parens: fields after it start past the last ')'.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const state = rest[0];
  const startTime = rest[19];
  return state && startTime ? { state, startTime } : undefined;
}

/**
 * True when pid runs (not a zombie) and, given a start time, is still the same process: a pid
 * reused by another process has another start time.
 */
export function isLiveProcess(pid: number, startTime = ""): boolean {
  const stat = readProcStat(pid);
  return !!stat && stat.state !== "Z" && stat.state !== "X" && (startTime === "" || stat.startTime === startTime);
}
