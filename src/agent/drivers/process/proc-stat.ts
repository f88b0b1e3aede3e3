import { readdirSync, readFileSync } from "node:fs";

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

/** Page size of RSS in /proc/<pid>/stat: 4 KiB on the x86-64 and arm64 kernels Baton runs on. */
const PAGE_BYTES = 4096;

/**
 * CPU time (clock ticks, utime + stime) and resident memory of every live process in a process
 * group, from /proc. A task's shim leads its group, so this is the task with all its children.
 */
export function processGroupUsage(pgid: number): { ticks: number; rssBytes: number } {
  let ticks = 0;
  let rssBytes = 0;
  for (const d of readdirSync("/proc")) {
    if (d.charCodeAt(0) < 48 || d.charCodeAt(0) > 57) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${d}/stat`, "utf8");
    } catch {
      continue; // ended meanwhile
    }
    // Fields after comm: state ppid pgrp … utime(11) stime(12) … rss(21).
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    if (Number(f[2]) !== pgid || f[0] === "Z") continue;
    ticks += Number(f[11]) + Number(f[12]);
    rssBytes += Number(f[21]) * PAGE_BYTES;
  }
  return { ticks, rssBytes };
}
