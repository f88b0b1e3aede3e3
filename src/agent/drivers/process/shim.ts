import { constants } from "node:os";

/** Status of a task whose shim could not put it in its cgroup (docker uses 125 for its own failures). */
export const CGROUP_JOIN_FAILED = 125;

/** Inner sh, $1 = N then N cgroup.procs files: join each, then leave "$@" as the command. */
const JOIN_CGROUPS = [
  "n=$1; shift",
  `while [ "$n" -gt 0 ]; do echo $$ > "$1" || { echo "baton: cannot join cgroup $1" >&2; exit ${CGROUP_JOIN_FAILED}; }; shift; n=$((n - 1)); done`,
].join("; ");

/**
 * The per-task supervisor, in the spirit of containerd-shim and conmon but costing one `sh`:
 * the task runs as the shim's foreground child, so when the task ends the shim records its exit
 * status in a file — even while the agent is down — and exits with the same status.
 *
 *   $1 exit file   written (atomically) with the task's status when it ends
 *   $2 pid file    the task's pid: the inner sh writes $$ and then execs the command, so the pid
 *                  the user sees in `service ps` is the task's own
 *   $3 N           how many cgroup.procs files follow, then those files: the inner sh writes its
 *                  pid into each before it execs, so the command starts inside its limits. The
 *                  shim itself stays outside, so an OOM kill never takes the status keeper. A
 *                  join that fails ends the task with status 125 and a line in its log.
 *
 * The shim catches the usual stop signals with a no-op trap (caught handlers reset to default in
 * children, so the task still gets every signal sent to the group); POSIX sh runs the trap only
 * after the foreground child has ended, so the status is never lost. Only SIGKILL of the shim
 * itself loses it, and then Baton killed it and knows why.
 */
export const SHIM_SCRIPT = [
  'f=$1; p=$2; shift 2',
  "trap : TERM INT HUP QUIT USR1 USR2 WINCH",
  `/bin/sh -c '${JOIN_CGROUPS}; echo $$ > "$0"; exec "$@"' "$p" "$@"`,
  "s=$?",
  'echo $s > "$f.tmp" && mv "$f.tmp" "$f"',
  "exit $s",
].join("\n");

const signalNames = new Map<number, string>(Object.entries(constants.signals).map(([name, n]) => [n, name]));

/** sh reports a child killed by signal N as status 128 + N. */
export function decodeShellStatus(status: number): { exitCode: number } | { signal: string } {
  const sig = status > 128 ? signalNames.get(status - 128) : undefined;
  return sig ? { signal: sig } : { exitCode: status };
}
