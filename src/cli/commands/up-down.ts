import type { Command } from "commander";
import { resolve } from "node:path";
import { etcdTlsFlags } from "../../store/etcd/etcd-client.js";
import { defaultDataDir } from "../../lib/paths.js";
import { withClient } from "../context.js";
import type { UpOptions } from "../../up.js";

/** The flags every command that runs Baton in the foreground has (`up`, `init`, `join`). */
export interface ProcessFlags {
  dataDir?: string;
  logLevel?: string;
  dnsAddr?: string;
}

export function addProcessFlags(cmd: Command): Command {
  return cmd
    .option("--data-dir <dir>", "where the store, task logs and socket live (default $BATON_DATA_DIR or ~/.baton)")
    .option("--log-level <level>", "trace, debug, info, warn, error (default info)")
    .option("--dns-addr <host:port>", "where the DNS responder for service names listens (default 127.77.0.1:53)");
}

/** TLS to an etcd store the user runs: on `up` and `init`, with `--store etcd://…`. */
export interface EtcdTlsFlags {
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
}

export function addEtcdTlsFlags(cmd: Command): Command {
  return cmd
    .option("--etcd-ca <file>", "(db) CA certificate (PEM) that signed the etcd members' certificates: the store speaks https to etcd")
    .option("--etcd-cert <file>", "(db) client certificate (PEM) for etcd's --client-cert-auth, with --etcd-key")
    .option("--etcd-key <file>", "(db) the client certificate's private key (PEM)");
}

/** The TLS flags as absolute paths (kept in cluster.json by init), or nothing. */
export function etcdTlsOptions(opts: EtcdTlsFlags): Pick<UpOptions, "etcdTls"> {
  const files = etcdTlsFlags(opts);
  if (!files) return {};
  return { etcdTls: { ca: resolve(files.ca), ...(files.cert && files.key ? { cert: resolve(files.cert), key: resolve(files.key) } : {}) } };
}

/** ProcessFlags as start options. */
export function processOptions(opts: ProcessFlags): Pick<UpOptions, "dataDir" | "logLevel" | "dnsAddress"> {
  return {
    dataDir: opts.dataDir ?? defaultDataDir(),
    ...(opts.logLevel ? { logLevel: opts.logLevel } : {}),
    ...(opts.dnsAddr ? { dnsAddress: opts.dnsAddr } : {}),
  };
}

export function registerUpDown(program: Command): void {
  addEtcdTlsFlags(addProcessFlags(program.command("up").description("Run Baton on this host in one process: manager (SQLite store, or etcd with --store), agent, API on DIR/baton.sock"))
    .option("--demo", "create the demo service `hello` (2 replicas of examples/hello) if it does not exist")
    .option("--store <url>", "(db) sqlite (default: DIR/store.db) or etcd://host:port[,host:port…] (https with --etcd-ca)"))
    .action(async (opts: ProcessFlags & EtcdTlsFlags & { demo?: boolean; store?: string }) =>
      runInForeground({
        ...processOptions(opts),
        ...etcdTlsOptions(opts),
        ...(opts.demo ? { demo: true } : {}),
        ...(opts.store ? { store: opts.store } : {}),
      }),
    );

  program
    .command("down")
    .description("Stop every task gracefully, then stop `baton up`")
    .action(async (_opts: unknown, cmd: Command) =>
      withClient(cmd, async (c) => {
        const r = await c.call<{ stoppedTasks: number }>("POST", "/v1/shutdown", { stopTasks: true });
        process.stdout.write(`stopped ${r.stoppedTasks} task${r.stoppedTasks === 1 ? "" : "s"}; baton is down\n`);
      }),
    );
}

/**
 * Runs Baton in this process until a signal (tasks left running) or `baton down`: what `up`,
 * `init` and `join` do, for whatever the data dir is.
 */
export async function runInForeground(opts: Omit<UpOptions, "pretty">): Promise<void> {
  // The server (fastify, SQLite, the agent) loads only here, so other commands start fast.
  const { startUp } = await import("../../up.js");
  let up: Awaited<ReturnType<typeof startUp>>;
  try {
    up = await startUp({ ...opts, pretty: process.stderr.isTTY === true });
  } catch (err) {
    // Listeners and timers a half-made start opened must not keep the process alive.
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
  if (up.joinCommand) {
    process.stdout.write(`This node is now the manager of a Baton cluster (node ${up.nodeId}).\n\nTo add a worker, run on another host:\n\n    ${up.joinCommand}\n\nTo print it again: baton join-token worker\n`);
  }
  process.stderr.write(`baton is up (${up.role === "single" ? "single host" : up.role}): export BATON_HOST=unix://${up.socketPath}\n`);
  let signalled = false;
  const onSignal = (sig: string): void => {
    if (signalled) return;
    signalled = true;
    void up.detach().then((n) => {
      process.stderr.write(`baton stopped (${sig}); ${n} task${n === 1 ? "" : "s"} left running: the next start re-adopts them, \`baton down\` stops them\n`);
      process.exit(0);
    });
  };
  // `on`, not `once`: a second Ctrl-C (or the launcher forwarding one) must not kill baton
  // halfway through detaching; detach is idempotent.
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  await up.done;
  // `baton node promote|demote` of this node: the same process starts again as the new role, on
  // the same data dir (cluster.json says which); its tasks ran on and are re-adopted.
  while (up.restartWanted) {
    try {
      up = await startUp({ dataDir: opts.dataDir, ...(opts.logLevel ? { logLevel: opts.logLevel } : {}), ...(opts.dnsAddress ? { dnsAddress: opts.dnsAddress } : {}), pretty: process.stderr.isTTY === true });
    } catch (err) {
      process.stderr.write(`Error: restarting as ${up.role === "worker" ? "a manager" : "a worker"} failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    }
    process.stderr.write(`baton is up again (${up.role}) after a role change: export BATON_HOST=unix://${up.socketPath}\n`);
    await up.done;
  }
  // Reached by `baton down` or `baton leave` through the API.
  setImmediate(() => process.exit(0));
}
