import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Clock } from "../lib/clock.js";
import { BatonError } from "../lib/errors.js";
import type { Logger } from "../lib/log.js";

/** Where Debian's `etcd-server` installs etcd; BATON_ETCD_BINARY points elsewhere (tests, other distributions). */
export const defaultEtcdBinary = (): string => process.env.BATON_ETCD_BINARY ?? "/usr/bin/etcd";

/** The binary, or an error saying which package to install. */
export function requireEtcdBinary(binary = defaultEtcdBinary()): string {
  if (existsSync(binary)) return binary;
  throw new BatonError("UNAVAILABLE", `etcd not found at ${binary}: install the Debian package etcd-server (apt-get install etcd-server), or set BATON_ETCD_BINARY`, [
    { path: ["--ha"], problem: "needs the etcd binary" },
  ]);
}

export interface EtcdProcessOptions {
  binary: string;
  args: string[];
  /** The member's data dir: a stale etcd still running on it (Baton was kill -9ed) is stopped first. */
  dataDir: string;
  /** etcd's own log (stdout and stderr), appended; moved to `.1` at a start once over 10 MiB. */
  logFile: string;
  /** Where the running etcd's pid is kept (for the stale check). */
  pidFile: string;
  /** Resolves true once the member answers (it is then "running"). */
  ready: () => Promise<boolean>;
  clock: Clock;
  log: Logger;
  /** Wraps the command line (tests run a member inside a network namespace). */
  wrap?: (argv: string[]) => string[];
  /** How long start() waits for `ready`. @default 30000 */
  startTimeoutMs?: number;
  /**
   * Asked after the member exited, before it is restarted: true when the cluster removed it (a
   * removed member would only fail again, for ever). It is then not restarted, and `onRemoved`
   * runs once.
   */
  isRemoved?: () => Promise<boolean>;
  onRemoved?: () => void;
}

const LOG_ROTATE_BYTES = 10 * 1024 * 1024;
/** First restart after 500 ms, doubling to 30 s; back to 500 ms after a minute up. */
const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;
const STABLE_MS = 60_000;
/** etcd flushes and closes its WAL on SIGTERM; beyond this it gets SIGKILL. */
const STOP_GRACE_MS = 10_000;

type State = "stopped" | "starting" | "running" | "restarting" | "stopping";

/**
 * One etcd member process, supervised: started and waited for, restarted with a backoff when it
 * dies, stopped (SIGTERM, then SIGKILL) when Baton stops. States: stopped → starting → running;
 * running → (it dies) restarting → (after the backoff, spawned again) running …; stop() from any
 * state → stopping → stopped. A first start that fails is an error to the caller, not a restart.
 *
 * etcd runs in its own process group, so a Ctrl-C at Baton's terminal does not stop the store
 * under a manager that is still detaching; Baton stops it after closing the store.
 */
export class EtcdProcess {
  private state: State = "stopped";
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private cancelRestart = (): void => undefined;
  private failures = 0;
  private startedAt = 0;
  private restartCount = 0;

  constructor(private readonly opts: EtcdProcessOptions) {}

  /** The running etcd's pid (undefined while it is down). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** How many times it was restarted after dying. */
  get restarts(): number {
    return this.restartCount;
  }

  get status(): State {
    return this.state;
  }

  /** Starts etcd and resolves once it answers; rejects (nothing left running) if it exits or never answers. */
  async start(): Promise<void> {
    if (this.state !== "stopped") return;
    this.state = "starting";
    try {
      await stopStale(this.opts.pidFile, this.opts.dataDir, this.opts.clock, this.opts.log);
      const child = this.launch();
      await this.waitReady(child);
      this.state = "running";
      this.opts.log.info({ pid: child.pid }, "etcd member running");
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** SIGTERM, then SIGKILL after 10 s; no restart follows. Idempotent. */
  async stop(): Promise<void> {
    this.state = "stopping";
    this.cancelRestart();
    const child = this.child;
    if (child) {
      signalGroup(child, "SIGTERM");
      const killer = setTimeout(() => signalGroup(child, "SIGKILL"), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(killer);
    }
    rmSync(this.opts.pidFile, { force: true });
    this.state = "stopped";
  }

  private launch(): ChildProcess {
    const { opts } = this;
    mkdirSync(dirname(opts.logFile), { recursive: true, mode: 0o700 });
    rotate(opts.logFile);
    const out = openSync(opts.logFile, "a", 0o600);
    const argv = [opts.binary, ...opts.args];
    const cmd = opts.wrap ? opts.wrap(argv) : argv;
    let child: ChildProcess;
    try {
      child = spawn(cmd[0]!, cmd.slice(1), { stdio: ["ignore", out, out], detached: true });
    } finally {
      closeSync(out);
    }
    this.child = child;
    this.startedAt = opts.clock.now();
    this.exited = new Promise((resolve) => {
      // A spawn failure (ENOENT, EACCES) is reported as an exit.
      child.once("error", (err) => {
        opts.log.error({ err }, "etcd could not be started");
        this.onExit(child, null, null);
        resolve();
      });
      child.once("exit", (code, signal) => {
        this.onExit(child, code, signal);
        resolve();
      });
    });
    if (child.pid !== undefined) writeFileSync(opts.pidFile, `${child.pid}\n`, { mode: 0o600 });
    // Baton exiting without stop() (a failed start, an uncaught error) must not leave etcd behind.
    const onProcessExit = (): void => signalGroup(child, "SIGTERM");
    process.once("exit", onProcessExit);
    void this.exited.then(() => process.removeListener("exit", onProcessExit));
    opts.log.info({ pid: child.pid, logFile: opts.logFile }, "etcd member starting");
    return child;
  }

  private async waitReady(child: ChildProcess): Promise<void> {
    const timeoutMs = this.opts.startTimeoutMs ?? 30_000;
    const deadline = this.opts.clock.now() + timeoutMs;
    for (;;) {
      if (this.child !== child) throw this.startFailure("etcd exited while starting");
      if (await this.opts.ready().catch(() => false)) return;
      if (this.opts.clock.now() > deadline) throw this.startFailure(`etcd did not answer within ${timeoutMs} ms`);
      await this.opts.clock.sleep(100);
    }
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = undefined;
    // A first start reports its own failure; a stop expects the exit.
    if (this.state !== "running") return;
    // Died under a running Baton: restart it, at once again if it had been up a while.
    if (this.opts.clock.now() - this.startedAt > STABLE_MS) this.failures = 0;
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** this.failures);
    this.failures++;
    this.state = "restarting";
    this.opts.log.warn({ code, signal, restartInMs: delay, logFile: this.opts.logFile }, "etcd member exited; restarting it");
    this.cancelRestart = this.opts.clock.setTimer(delay, () => {
      if (this.state !== "restarting") return;
      const removed = this.opts.isRemoved ? this.opts.isRemoved().catch(() => false) : Promise.resolve(false);
      void removed.then((gone) => {
        if (this.state !== "restarting") return;
        if (!gone) return this.respawn();
        this.state = "stopped";
        rmSync(this.opts.pidFile, { force: true });
        this.opts.log.error({ logFile: this.opts.logFile }, "etcd member was removed from the cluster: not restarting it");
        this.opts.onRemoved?.();
      });
    });
  }

  private respawn(): void {
    this.state = "running";
    this.restartCount++;
    // Running again as soon as it is spawned: if it dies again, onExit backs off further.
    const again = this.launch();
    this.waitReady(again).then(
      () => this.opts.log.info({ pid: again.pid, restarts: this.restartCount }, "etcd member restarted"),
      (err: unknown) => {
        if (this.child === again) this.opts.log.warn({ err }, "restarted etcd member does not answer yet");
      },
    );
  }

  private startFailure(reason: string): BatonError {
    const tail = readTail(this.opts.logFile, 1500);
    return new BatonError("UNAVAILABLE", `etcd member did not start: ${reason} (its log: ${this.opts.logFile})${tail ? `\n${tail}` : ""}`);
  }
}

function signalGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  try {
    // Negative pid: the whole group (etcd and whatever wrapper started it).
    if (child.pid !== undefined) process.kill(-child.pid, sig);
  } catch {
    child.kill(sig);
  }
}

/**
 * An etcd left running by a Baton that was kill -9ed still holds the data dir and the ports:
 * stop it (only if its command line names this data dir) before starting ours.
 */
async function stopStale(pidFile: string, dataDir: string, clock: Clock, log: Logger): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, "utf8").trim());
  } catch {
    return;
  }
  let cmdline = "";
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return;
  }
  if (!cmdline.split("\0").includes(dataDir)) return;
  log.warn({ pid }, "an etcd member of this data dir is still running (Baton was killed?); stopping it first");
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + STOP_GRACE_MS;
  while (Date.now() < deadline && existsSync(`/proc/${pid}`)) await clock.sleep(50);
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    /* gone */
  }
}

function rotate(file: string): void {
  try {
    if (statSync(file).size > LOG_ROTATE_BYTES) renameSync(file, `${file}.1`);
  } catch {
    /* no log yet */
  }
}

function readTail(file: string, n: number): string {
  try {
    const text = readFileSync(file, "utf8");
    return text.slice(-n).trim();
  } catch {
    return "";
  }
}
