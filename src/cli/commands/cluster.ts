import type { Command } from "commander";
import { Argument, InvalidArgumentError, Option } from "commander";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseDuration } from "../../lib/duration.js";
import { withClient } from "../context.js";
import { addEtcdTlsFlags, addProcessFlags, etcdTlsOptions, processOptions, runInForeground, type EtcdTlsFlags, type ProcessFlags } from "./up-down.js";

function durationMs(flag: string) {
  return (v: string): number => {
    const ms = parseDuration(v);
    if (ms === undefined || ms <= 0) throw new InvalidArgumentError(`${flag}: "${v}" is not a positive duration (e.g. 500ms, 2s)`);
    return ms;
  };
}

/** `baton init`, `join`, `join-token`, `leave` and `cert create`: a cluster's membership. */
export function registerClusterCommands(program: Command): void {
  const init = addProcessFlags(program.command("init").description("Make this host the first manager of a cluster (keeps what `baton up` runs here); runs in the foreground and prints the join command"))
    .option("--advertise-addr <addr>", "address other nodes reach this one at (default: the host's only IPv4 address)")
    .option("--listen-addr <host:port>", "where to listen for nodes, joins and the remote API (default 0.0.0.0:4242)")
    .option("--heartbeat-period <duration>", "how often nodes report (default 500ms)", durationMs("--heartbeat-period"))
    .option("--heartbeat-grace <duration>", "silence after which a node is down and its tasks move (default 3 periods)", durationMs("--heartbeat-grace"))
    .option("--store <url>", "(db) sqlite (default: DIR/store.db) or etcd://host:port[,host:port…], an etcd cluster you run (https with --etcd-ca); kept for later starts")
    .option("--ha", "(db) HA managers: run a managed etcd member here (/usr/bin/etcd, package etcd-server; TLS from its own CA, data in DIR/etcd) as the store; kept for later starts");
  addEtcdTlsFlags(init).action((opts: ProcessFlags & EtcdTlsFlags & { advertiseAddr?: string; listenAddr?: string; heartbeatPeriod?: number; heartbeatGrace?: number; store?: string; ha?: boolean }) =>
      runInForeground({
        ...processOptions(opts),
        ...etcdTlsOptions(opts),
        init: {
          ...(opts.ha ? { ha: true } : {}),
          ...(opts.advertiseAddr ? { advertiseAddr: opts.advertiseAddr } : {}),
          ...(opts.listenAddr ? { listenAddr: opts.listenAddr } : {}),
          ...(opts.heartbeatPeriod ? { heartbeatPeriodMs: opts.heartbeatPeriod } : {}),
          ...(opts.heartbeatGrace ? { heartbeatGraceMs: opts.heartbeatGrace } : {}),
        },
        ...(opts.store ? { store: opts.store } : {}),
      }),
    );

  addProcessFlags(
    program
      .command("join")
      .description("Join a cluster as a worker (agent and mesh) or, with a manager token, as another manager (on the cluster's etcd store); runs in the foreground. Later starts resume without the token"),
  )
    .argument("[manager]", "a manager's host:port (default port 4242)")
    .option("--token <token>", "the join token (`baton join-token worker|manager` on a manager)")
    .option("--advertise-addr <addr>", "address other nodes reach this one at (worker default: the address it dials the manager from; a manager: the host's one address, or choose one when it has several)")
    .option("--listen-addr <host:port>", "a manager's listener for nodes, joins and the remote API (default 0.0.0.0:4242); a worker keeps it for `baton node promote`")
    .action((manager: string | undefined, opts: ProcessFlags & { token?: string; advertiseAddr?: string; listenAddr?: string }) => {
      if ((opts.token === undefined) !== (manager === undefined)) throw new InvalidArgumentError("a first join needs both --token and the manager's address (a later start needs neither)");
      return runInForeground({
        ...processOptions(opts),
        ...(opts.token && manager
          ? { join: { token: opts.token, manager, ...(opts.advertiseAddr ? { advertiseAddr: opts.advertiseAddr } : {}), ...(opts.listenAddr ? { listenAddr: opts.listenAddr } : {}) } }
          : { resumeWorker: true }),
      });
    });

  program
    .command("join-token")
    .description("Print the command (or with -q the token) that joins a node of this role; --rotate replaces the token")
    .addArgument(new Argument("<role>", "worker or manager").choices(["worker", "manager"]))
    .option("-q, --quiet", "only the token")
    .option("--rotate", "replace the token: the old one stops working for new joins (joined nodes are not affected)")
    .action(async (role: "worker" | "manager", opts: { quiet?: boolean; rotate?: boolean }, cmd: Command) =>
      withClient(cmd, async (c) => {
        const r = opts.rotate
          ? await c.call<{ token: string }>("POST", `/v1/cluster/join-tokens/${role}/rotate`)
          : await c.call<{ token: string }>("GET", `/v1/cluster/join-tokens/${role}`);
        if (opts.quiet) return void process.stdout.write(r.token + "\n");
        const { managers } = await c.call<{ managers: string[] }>("GET", "/v1/cluster");
        if (opts.rotate) process.stdout.write(`Rotated the ${role} join token.\n\n`);
        process.stdout.write(`To add a ${role} to this cluster, run the following command:\n\n    baton join --token ${r.token} ${managers[0] ?? "MANAGER:4242"}\n\n`);
      }),
    );

  program
    .command("leave")
    .description("On a worker: stop its tasks, leave the cluster (it shows as down until `baton node rm`), forget its credentials")
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async (c) => {
        const r = await c.call<{ stoppedTasks: number }>("POST", "/v1/leave");
        process.stdout.write(`stopped ${r.stoppedTasks} task${r.stoppedTasks === 1 ? "" : "s"}; node left the cluster\n`);
      }),
    );

  program
    .command("info")
    .description("What this Baton is: version, node, role, managers, data dir")
    .option("--format <format>", "table or json")
    .action(async (opts: { format?: string }, cmd: Command) =>
      withClient(cmd, async (c) => {
        const info = await c.call<Record<string, unknown>>("GET", "/v1/info");
        if (opts.format === "json") return void process.stdout.write(JSON.stringify(info) + "\n");
        for (const [k, v] of Object.entries(info)) process.stdout.write(`${k}: ${Array.isArray(v) ? v.join(", ") : String(v)}\n`);
      }),
    );

  const cert = program.command("cert").description("Client certificates for the remote CLI");
  cert
    .command("create")
    .description("On a manager: make a key and a client certificate (30 days) for BATON_HOST=tcp://MANAGER:4242")
    .addOption(new Option("--out <dir>", "where to write ca.pem, cert.pem and key.pem (0600)").makeOptionMandatory())
    .action(async (opts: { out: string }, cmd: Command) =>
      withClient(cmd, async (c) => {
        const { createNodeKeyAndCsr } = await import("../../ca/node-cert.js");
        const { newId } = await import("../../lib/ids.js");
        const { keyPem, csrPem } = await createNodeKeyAndCsr(`client-${newId().slice(0, 12)}`);
        const r = await c.call<{ certPem: string; caCertPem: string; notAfter: number }>("POST", "/v1/certs", { csrPem });
        mkdirSync(opts.out, { recursive: true, mode: 0o700 });
        writeFileSync(join(opts.out, "key.pem"), keyPem, { mode: 0o600 });
        writeFileSync(join(opts.out, "cert.pem"), r.certPem, { mode: 0o644 });
        writeFileSync(join(opts.out, "ca.pem"), r.caCertPem, { mode: 0o644 });
        const { managers } = await c.call<{ managers: string[] }>("GET", "/v1/cluster");
        process.stdout.write(`client certificate valid until ${new Date(r.notAfter).toISOString()} in ${opts.out}\n\n    export BATON_HOST=tcp://${managers[0] ?? "MANAGER:4242"} BATON_CERT_PATH=${opts.out}\n`);
      }),
    );
}
