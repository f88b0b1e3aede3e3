import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";
import { Agent, loadNodeId } from "./agent/agent.js";
import { BATON_VERSION } from "./lib/version.js";
import { ProcessDriver } from "./agent/drivers/process/process-driver.js";
import { DockerDriver } from "./agent/drivers/docker/docker-driver.js";
import { Cgroups } from "./agent/cgroups/cgroups.js";
import { readLocalLog } from "./agent/logs/local-log-source.js";
import { buildApp } from "./api/app.js";
import type { ClusterControl } from "./api/cluster.js";
import type { LogSource } from "./api/logs.js";
import type { StatsSource } from "./api/stats.js";
import { systemClock, type Clock } from "./lib/clock.js";
import { lockDataDir } from "./lib/data-dir-lock.js";
import { BatonError } from "./lib/errors.js";
import { newId } from "./lib/ids.js";
import { createLogger, type Logger } from "./lib/log.js";
import { Manager } from "./manager/manager.js";
import { Mesh } from "./mesh/mesh.js";
import { MESH_ADDRESS } from "./model/service-address.js";
import { MeshSync } from "./mesh/mesh-sync.js";
import { startDnsResponder, type DnsResponder } from "./mesh/dns.js";
import { enableContainerRange, startContainerDns } from "./mesh/container-range.js";
import { resolveServiceSpec } from "./input/resolve.js";
import { openSqliteStore } from "./store/sqlite/sqlite-store.js";
import { EtcdStore } from "./store/etcd/etcd-store.js";
import { loadEtcdTls, type EtcdConnection, type EtcdTlsFiles } from "./store/etcd/etcd-client.js";
import { etcdCaDir, loadOrCreateEtcdCa } from "./ha/etcd-pki.js";
import { joinManagedEtcd, startManagedEtcd, type ManagedEtcd } from "./ha/managed-etcd.js";
import { requireEtcdBinary } from "./ha/etcd-process.js";
import { openSnapshot } from "./ha/snapshot.js";
import { leadsRaft, listMembers, moveLeader, removeMember } from "./ha/membership.js";
import { RaftLeaderPlacement } from "./ha/raft-leader-placement.js";
import { parseStoreUrl } from "./store/store-url.js";
import type { Store } from "./store/store.js";
import type { AgentSession } from "./dispatcher/protocol.js";
import { ClusterAuthority, caDir, certsDir } from "./cluster/authority.js";
import { ClusterCa } from "./ca/ca.js";
import { adoptManagerMaterial, joinedEtcdTlsDir, managerMaterial } from "./cluster/manager-material.js";
import { Leadership, type ManagersView } from "./manager/leadership.js";
import { SessionForwarder } from "./cluster/session-forward.js";
import { detectAdvertiseAddr, parseHostPort, readClusterConfig, writeClusterConfig, DEFAULT_CLUSTER_PORT, type ClusterConfig } from "./cluster/config.js";
import { startClusterListener } from "./cluster/listener.js";
import { fetchPromotion, httpsJoinTransport, renewCertificate } from "./cluster/join-client.js";
import { buildWorkerApp } from "./cluster/worker-api.js";
import { joinWithToken } from "./ca/join.js";
import { createNodeKeyAndCsr, loadNodeCredentials, needsRenewal, readNodeCert, renewAt, saveNodeCredentials, type NodeCredentials } from "./ca/node-cert.js";
import { SessionServer } from "./session/server.js";
import { TaskRecords } from "./agent/task-records.js";
import { RemoteSession } from "./session/client.js";
import { openClusterDataKey, openLocalDataKey, type SecretBox } from "./secrets/data-key.js";

export interface UpOptions {
  dataDir: string;
  /** Create the demo service `hello` (2 replicas of examples/hello) when it does not exist. */
  demo?: boolean;
  logLevel?: string;
  pretty?: boolean;
  /** host:port of the DNS responder for service names. @default 127.77.0.1:53 */
  dnsAddress?: string;
  clock?: Clock;
  /**
   * The manager's store: `sqlite` (default, DIR/store.db) or `etcd://host:port,…` (an etcd cluster
   * the user runs). `baton init` keeps it in DIR/cluster.json for later starts.
   */
  store?: string;
  /** TLS to the etcd of `store` (`--etcd-ca/--etcd-cert/--etcd-key`, absolute paths); `init` keeps it too. */
  etcdTls?: EtcdTlsFiles;
  /** `baton init`: become (or resume as) a cluster's manager; `ha`: on a managed etcd member (src/ha). */
  init?: { advertiseAddr?: string; listenAddr?: string; heartbeatPeriodMs?: number; heartbeatGraceMs?: number; ha?: boolean };
  /**
   * `baton join`: become a node of the cluster of `manager` (host:port) with a join token: a
   * worker, or with a manager token another manager (on the cluster's etcd store).
   */
  join?: { token: string; manager: string; advertiseAddr?: string; listenAddr?: string };
  /** `baton join` without a token: resume as the worker this data dir already is (never anything else). */
  resumeWorker?: boolean;
}

export interface RunningBaton {
  socketPath: string;
  role: "single" | "manager" | "worker";
  nodeId: string;
  /** The manager's store (absent on a worker). */
  store?: Store;
  /** After `baton init`: the command another host runs to join as a worker. */
  joinCommand?: string;
  /** The manager's TLS listener, host:port. */
  listenAddr?: string;
  /** Leaves tasks running (Ctrl-C, SIGTERM, upgrades). Returns how many were left running. */
  detach(): Promise<number>;
  done: Promise<void>;
  /**
   * True once `done` resolved because the node changed role (`baton node promote|demote`): the
   * caller starts Baton again on the same data dir, which is now the other role; tasks ran on.
   */
  readonly restartWanted?: boolean;
}

/** 127.77.0.1 is the mesh's own address in the service address range (model/service-address.ts). */
const DEFAULT_DNS_ADDRESS = `${MESH_ADDRESS}:53`;

/**
 * Starts whatever this data dir is: `baton up` (one host: manager, agent, mesh in one process),
 * a cluster's manager (the same plus the CA and a TLS listener for node sessions, joins and the
 * remote API), or a worker (agent and mesh on a session to a manager). The same components
 * everywhere; only the session transport differs.
 */
export async function startUp(opts: UpOptions): Promise<RunningBaton> {
  const dataDir = resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const clock = opts.clock ?? systemClock;
  const log = createLogger({ ...(opts.logLevel ? { level: opts.logLevel } : {}), ...(opts.pretty ? { pretty: true } : {}) });
  const lock = lockDataDir(dataDir);
  try {
    const cfg = readClusterConfig(dataDir);
    if (opts.join) {
      if (!cfg && existsSync(join(dataDir, "store.db")))
        throw new BatonError("BAD_REQUEST", `${dataDir} holds a single-host Baton's store: \`baton join\` needs a fresh --data-dir (or run \`baton init\` here to make this host the first manager)`);
    }
    if (opts.resumeWorker && !opts.join && !cfg)
      throw new BatonError("BAD_REQUEST", `${dataDir} is not a worker of a cluster: a first join needs --token and the manager's address`);
    if (opts.init && cfg?.role === "worker") throw new BatonError("BAD_REQUEST", `${dataDir} belongs to a worker of a cluster: \`baton leave\` first, or use another --data-dir`);
    const joined = opts.join && !cfg ? await joinCluster(opts.join, { dataDir, clock, log }) : cfg;
    if (opts.join && cfg) log.info({ managers: cfg.managers }, "this data dir already joined a cluster; resuming (the token is not needed)");
    if (joined?.role === "worker") return await startWorker(opts, { dataDir, clock, log, lock, cfg: joined });
    return await startManager(opts, { dataDir, clock, log, lock, cfg: joined });
  } catch (err) {
    lock.release();
    throw err;
  }
}

interface Context {
  dataDir: string;
  clock: Clock;
  log: Logger;
  lock: { release(): void };
  cfg: ClusterConfig | undefined;
}

/** What manager and worker share on a node: the agent and the mesh (with DNS) on a session. */
async function startNodeParts(ctx: Context, session: AgentSession, role: "manager" | "worker", address: string | undefined, dnsAddress: string | undefined) {
  const { clock, log, dataDir } = ctx;
  const mesh = new Mesh({ clock, log });
  const docker = new DockerDriver({ clock, log: log.child({ component: "docker" }) });
  const meshSync: MeshSync = new MeshSync({ session, mesh, log: log.child({ component: "mesh" }), networksOfAddress: (ip: string) => agent.networksOfAddress(ip) ?? docker.networksOfAddress(ip) });
  const dns = await startDns(meshSync, dnsAddress ?? DEFAULT_DNS_ADDRESS, log);
  // Containers reach services through the container range (docs/mesh.md), when docker runs here.
  // Set up beside the agent's start, not before it: a restarted node must register within the
  // heartbeat grace, and this runs a command and pings the engine. Containers start after it.
  const containerSetup = (async () => {
    if (!(await docker.isAvailable()) || !(await enableContainerRange(log))) return undefined;
    meshSync.enableContainerRange();
    const started = await startContainerDns((name, from) => meshSync.resolve(name, from), log, readContainerDns(dataDir));
    if (started) writeContainerDns(dataDir, started.host);
    return started;
  })().catch((err: unknown) => (log.warn({ err }, "container range setup failed: containers will not reach services by name"), undefined));
  // Known synchronously for discoveryEnv: a container's start awaits containerSetup (through
  // containerDns below) after this callback was registered, so it has run by then.
  let containerDns: Awaited<typeof containerSetup>;
  void containerSetup.then((d) => (containerDns = d));
  // Found once: what this host lets Baton enforce (docs/limits.md); the node advertises it.
  const driver = new ProcessDriver(clock, { cgroups: Cgroups.detect() });
  log.info({ limits: driver.limits }, driver.limits.cgroup === "none" ? "no writable cgroups: tasks with limits will not be placed here" : "task limits enforced through cgroups");
  const agent: Agent = new Agent({
    session,
    driver,
    drivers: new Map([[docker.name, docker]]),
    clock,
    log: log.child({ component: "agent" }),
    dataDir: join(dataDir, "agent"),
    role,
    ...(address ? { address } : {}),
    beforeStop: (taskId, graceMs) => meshSync.drain(taskId, graceMs),
    discoveryEnv: (scope) => {
      const dnsAddr = scope.container ? containerDns && `${containerDns.host}:53` : dns?.address;
      return { ...meshSync.discoveryEnv(scope), ...(dnsAddr ? { BATON_DNS: dnsAddr } : {}) };
    },
    containerDns: async () => (await containerSetup)?.host,
    trafficByTask: () => meshSync.trafficByTask(),
  });
  meshSync.start();
  await agent.start();
  return { mesh, meshSync, dns, containerDns: containerSetup, agent };
}

async function listenUnix(app: FastifyInstance, dataDir: string): Promise<string> {
  const socketPath = join(dataDir, "baton.sock");
  rmSync(socketPath, { force: true });
  // The socket is created 0600 (umask), not chmod-ed after a window where others could connect.
  const oldMask = process.umask(0o177);
  try {
    await app.listen({ path: socketPath });
  } finally {
    process.umask(oldMask);
  }
  chmodSync(socketPath, 0o600);
  return socketPath;
}

async function startManager(opts: UpOptions, ctx: Context): Promise<RunningBaton> {
  const { dataDir, clock, log } = ctx;
  // A cluster manager: asked by `init`, or resumed from the data dir.
  let cfg = ctx.cfg;
  if (opts.init?.ha && !cfg?.ha && existsSync(join(dataDir, "store.db")))
    throw new BatonError("VALIDATION_FAILED", `--ha starts a new etcd store, but ${join(dataDir, "store.db")} holds this host's SQLite store: moving a store to etcd is not supported; use a fresh --data-dir`, [{ path: ["--ha"], problem: "data dir has a SQLite store" }]);
  if (opts.init) {
    const advertiseAddr = opts.init.advertiseAddr ? parseHostPort(opts.init.advertiseAddr, "--advertise-addr").host : (cfg?.advertiseAddr ?? detectAdvertiseAddr());
    const listen = parseHostPort(opts.init.listenAddr ?? cfg?.listenAddr ?? `0.0.0.0:${DEFAULT_CLUSTER_PORT}`, "--listen-addr");
    cfg = {
      role: "manager",
      advertiseAddr,
      listenAddr: `${listen.host}:${listen.port}`,
      managers: [`${advertiseAddr}:${listen.port}`],
      ...(opts.init.heartbeatPeriodMs ?? cfg?.heartbeatPeriodMs ? { heartbeatPeriodMs: opts.init.heartbeatPeriodMs ?? cfg?.heartbeatPeriodMs } : {}),
      ...(opts.init.heartbeatGraceMs ?? cfg?.heartbeatGraceMs ? { heartbeatGraceMs: opts.init.heartbeatGraceMs ?? cfg?.heartbeatGraceMs } : {}),
      ...(opts.store ?? cfg?.store ? { store: opts.store ?? cfg?.store } : {}),
      ...(opts.etcdTls ?? cfg?.etcdTls ? { etcdTls: opts.etcdTls ?? cfg?.etcdTls } : {}),
      ...(opts.init.ha || cfg?.ha ? { ha: true } : {}),
    };
    if (cfg.ha && cfg.store)
      throw new BatonError("VALIDATION_FAILED", `--ha runs a managed etcd as the store: it does not go with --store ${cfg.store}`, [{ path: ["--store"], problem: "not with --ha" }]);
  }
  if ((opts.etcdTls ?? cfg?.etcdTls) && !(opts.store ?? cfg?.store)?.startsWith("etcd://"))
    throw new BatonError("VALIDATION_FAILED", "--etcd-ca/--etcd-cert/--etcd-key are for an etcd store: add --store etcd://host:port,…", [{ path: ["--store"], problem: "required with --etcd-ca" }]);
  const period = cfg?.heartbeatPeriodMs ?? 500;
  const grace = cfg?.heartbeatGraceMs ?? period * 3;
  if (grace < 2 * period)
    throw new BatonError("VALIDATION_FAILED", `--heartbeat-grace (${grace} ms) must be at least two heartbeat periods (${2 * period} ms), or nodes flap down and up`, [{ path: ["--heartbeat-grace"], problem: "shorter than two periods" }]);
  const nodeId = loadNodeId(join(dataDir, "agent"));
  const opened = await openStore(opts, cfg, { dataDir, clock, log, nodeId });
  const { store, etcd, managed, etcdConnection } = opened;
  const storeBackend = etcd ? "etcd" : "sqlite";
  // Opened once the cluster's CA is (a cluster's data key is sealed under it); assignments wait for manager.start().
  const keys: { box?: SecretBox } = {};
  const manager = new Manager({
    store,
    clock,
    log,
    openSecret: (id, sealed) => {
      if (!keys.box) throw new BatonError("UNAVAILABLE", "the secrets data key is not open yet");
      return keys.box.open(id, sealed);
    },
    // One scheduler commit is one etcd transaction: stay within its operation limit.
    ...(etcd ? { maxOpsPerCommit: etcd.maxOpsPerTxn } : {}),
    ...(cfg?.heartbeatPeriodMs ? { heartbeatPeriodMs: cfg.heartbeatPeriodMs } : {}),
    ...(cfg?.heartbeatGraceMs ? { heartbeatGraceMs: cfg.heartbeatGraceMs } : {}),
  });

  // The cluster parts come up before the controllers, so nothing is decided on a half-made cluster.
  let authority: ClusterAuthority | undefined;
  let sessions: SessionServer | undefined;
  let joinCommand: string | undefined;
  let leadership: Leadership | undefined;
  /** The latest managers view (several managers): who holds which agent sessions, at which address. */
  let managersView: ManagersView | undefined;
  if (cfg) {
    const opened = await ClusterAuthority.open({ dataDir, store, clock, nodeId, addresses: [cfg.advertiseAddr!] });
    authority = opened.authority;
    const self = `${cfg.advertiseAddr!}:${parseHostPort(cfg.listenAddr!, "--listen-addr").port}`;
    await authority.addManager(self);
    const auth = authority;
    sessions = new SessionServer({ dispatcher: manager.dispatcher, clock, log: log.child({ component: "sessions" }), verifier: authority.verifier, managers: () => auth.managers() });
    await writeClusterConfig(dataDir, cfg);
    joinCommand = `baton join --token ${authority.token("worker")} ${cfg.managers[0]}`;
    // Several managers share the etcd store: one leads (docs/ha.md); every one serves the API and sessions.
    if (etcdConnection) {
      const conns = sessions;
      leadership = new Leadership({
        connection: etcdConnection,
        self: { nodeId, addr: self },
        clock,
        log: log.child({ component: "leadership" }),
        onElected: (fence) => manager.lead(fence),
        onDeposed: () => manager.stopLeading(),
        // Agents with a session here, heard within the grace period (the manager's own agent too).
        liveSessions: () => {
          const here = new Set([...conns.connectedNodes(), nodeId]);
          return manager.dispatcher.liveNodes().filter((id) => here.has(id));
        },
        // The leader counts a node alive while any reachable manager hears it.
        // A manager gone from the view (its lease expired: killed, cut off) leaves its agents
        // reconnecting elsewhere: their nodes get the reconnection allowance, not a verdict.
        onView: (view) => {
          const before = managersView;
          managersView = view;
          if (!manager.isLeading()) return;
          for (const rec of view.reachable.values()) if (rec.nodeId !== nodeId) manager.dispatcher.noteSeen(rec.sessions);
          for (const [id, rec] of before?.reachable ?? []) if (id !== nodeId && !view.reachable.has(id)) manager.managerLost(rec.sessions);
        },
      });
    }
  }
  const secretBox = (keys.box = authority ? await openClusterDataKey(store, await authority.ca.exportKeyPem(), dataDir) : await openLocalDataKey(dataDir));
  // A managed etcd: Baton's leader keeps etcd's raft leader on another host (src/ha/raft-leader-placement.ts).
  const placement = leadership && managed
    ? new RaftLeaderPlacement({ selfName: managed.name, isLeading: () => manager.isLeading(), selfLeadsRaft: () => leadsRaft(managed.connection), members: () => listMembers(managed.connection), moveLeader: (id) => moveLeader(managed.connection, id), clock, log: log.child({ component: "raft-placement" }) })
    : undefined;
  if (leadership) {
    manager.startSessions();
    leadership.start();
    placement?.start();
  } else manager.start();
  const session = manager.dispatcher.localSession();
  const parts = await startNodeParts(ctx, session, "manager", cfg?.advertiseAddr, opts.dnsAddress);
  const { agent, mesh, meshSync, dns } = parts;

  const local = (t: { id: string }, o: Parameters<LogSource["open"]>[1], onLines: (l: string[]) => void, isPaused?: () => boolean) => readLocalLog(agent.logs, clock, t.id, o, onLines, isPaused);
  // With several managers, a node's agent session may be on another manager: logs and stats are
  // then read through it, over mutual TLS with this manager's certificate (docs/ha.md).
  const auth = authority;
  const forwarder = leadership && auth ? new SessionForwarder({ self: nodeId, view: () => managersView, credentials: () => auth.credentials, verifier: auth.verifier }) : undefined;
  const elsewhere = (node: string, forward: boolean): string | undefined =>
    forward && forwarder && sessions && !sessions.connectedNodes().includes(node) ? forwarder.holderOf(node) : undefined;
  const logs: LogSource = {
    open: (task, o, onLines, isPaused, forward = true) => {
      if (task.nodeId === agent.nodeId || !sessions) return local(task, o, onLines, isPaused);
      const via = elsewhere(task.nodeId!, forward);
      return via ? forwarder!.openLogs(via, task.id, o, onLines, isPaused) : sessions.openLogs(task.nodeId!, task.id, o, onLines);
    },
  };
  const stats: StatsSource = {
    read: (node, taskIds, forward = true) => {
      if (node === agent.nodeId || !sessions) return agent.taskStats(taskIds);
      const via = elsewhere(node, forward);
      return via ? forwarder!.taskStats(via, node, taskIds) : sessions.taskStats(node, taskIds);
    },
  };
  const material = async () =>
    managerMaterial({
      caKeyPem: await authority!.caKeyPem(),
      managers: authority!.managers(),
      cfg: cfg!,
      dataDir,
      clock,
      ...(etcdConnection ? { etcd: etcdConnection } : {}),
      ...(managed ? { members: () => managed.members() } : {}),
    });
  const cluster: ClusterControl | undefined =
    authority && sessions && cfg
      ? {
          caCertPem: authority.ca.certPem,
          verifier: authority.verifier,
          token: (role) => authority.token(role),
          rotate: (role) => authority.rotate(role),
          join: async (req) => {
            const res = await authority.join(req);
            if (res.role !== "manager") return res;
            return { ...res, manager: await material() };
          },
          renew: (peer, raw, csr) => authority.renew(peer, raw, csr),
          promote: async (peer, raw, csr) => ({ ...(await authority.promote(peer, raw, csr)), manager: await material() }),
          issueClientCertificate: (csr) => authority.issueClientCertificate(csr),
          managers: () => authority.managers(),
          revokeNodeIn: (rec, id) => authority.revokeNodeIn(rec, id),
          disconnect: (id, message) => sessions.disconnect(id, message),
        }
      : undefined;

  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  let stopping: Promise<number> | undefined;
  let exiting: Promise<void> | undefined;
  let stopRenewal = (): void => undefined;
  let restartWanted = false;
  let roleChanged = (): void => undefined;
  let stopRoles = (): void => undefined;
  // Controllers stop first, so nothing is restarted while tasks are being stopped.
  const stopWork = (stopTasks: boolean): Promise<number> =>
    (stopping ??= (async () => {
      stopRoles();
      placement?.stop();
      manager.stopControllers();
      // Step down first (the lease is revoked): another manager leads at once instead of after the TTL.
      await leadership?.close();
      const n = stopTasks ? await agent.stopAll() : agent.runningTaskIds().length;
      agent.detach();
      manager.stop();
      meshSync.stop();
      stopRenewal();
      return n;
    })());
  let tcp: Awaited<ReturnType<typeof startClusterListener>> | undefined;
  let steppingDown = false;
  const exit = (): Promise<void> =>
    (exiting ??= (async () => {
      sessions?.close();
      await tcp?.app.close();
      await app.close();
      await mesh.close();
      await dns?.responder.close();
      await (await parts.containerDns)?.responder.close();
      authority?.close();
      store.close();
      // After the store: the manager's last writes went through its member.
      if (managed && steppingDown) {
        // Demoted: its member leaves the etcd cluster (the others keep the quorum the API checked).
        await managed.leave().catch((err: unknown) => log.error({ err }, "the etcd member did not leave the cluster: remove it with `baton ha members` / etcdctl member remove"));
      }
      await managed?.stop();
      rmSync(join(dataDir, "baton.pid"), { force: true });
      ctx.lock.release();
      resolveDone();
    })());

  const apiDeps = {
    store,
    clock,
    log,
    logs,
    secrets: secretBox,
    stats,
    ...(cluster ? { cluster } : {}),
    ...(cluster
      ? {
          roles: {
            etcd: etcdConnection !== undefined,
            ...(managed ? { members: () => managed.members(), removeMember: (name: string) => removeMember(managed.connection, name, clock).then(() => undefined) } : {}),
            changed: () => roleChanged(),
          },
        }
      : {}),
    ...(etcdConnection ? { snapshot: () => openSnapshot(etcdConnection), etcdMembers: () => listMembers(etcdConnection) } : {}),
    ...(leadership
      ? {
          managerStatus: () => {
            const view = leadership.managers();
            return { leader: view.leader?.nodeId, reachable: new Set(view.reachable.keys()) };
          },
        }
      : {}),
    system: {
      info: () => ({
        version: BATON_VERSION,
        nodeId: agent.nodeId,
        hostname: hostname(),
        dataDir,
        store: storeBackend,
        ...(managed ? { etcdMember: managed.name, etcdClientUrl: managed.clientUrl } : {}),
        pid: process.pid,
        role: cfg ? "manager" : "single",
        ...(cfg ? { managers: authority!.managers(), listenAddr: cfg.listenAddr, connectedNodes: sessions!.connectedNodes().length } : {}),
        ...(leadership ? { leader: leadership.managers().leader?.addr ?? "none", isLeader: leadership.isLeader() } : {}),
        ...(dns ? { dns: dns.address } : {}),
      }),
      shutdown: async ({ stopTasks }: { stopTasks: boolean }) => ({ stoppedTasks: await stopWork(stopTasks) }),
      exit,
    },
  };
  const app: FastifyInstance = await buildApp(apiDeps);
  const socketPath = await listenUnix(app, dataDir);
  if (cfg && authority && sessions) {
    const listen = parseHostPort(cfg.listenAddr!, "--listen-addr");
    tcp = await startClusterListener({ deps: apiDeps, host: listen.host, port: listen.port, credentials: authority.credentials, sessions });
    sessions.start();
    const addresses = [cfg.advertiseAddr!];
    stopRenewal = scheduleRenewal(clock, () => authority.credentials.certPem, async () => {
      if (await authority.renewOwnIfDue(dataDir, nodeId, addresses)) tcp?.setCredentials(authority.credentials);
    }, log);
  }

  // `baton node promote|demote` (src/cluster/role-change.ts): every manager tells the promoted
  // workers with a session here; a manager asked to be a worker steps down itself.
  let stepDown: Promise<void> | undefined;
  if (cfg && authority && sessions) {
    const auth = authority;
    const conns = sessions;
    const self = `${cfg.advertiseAddr!}:${parseHostPort(cfg.listenAddr!, "--listen-addr").port}`;
    const becomeWorker = async (): Promise<void> => {
      log.warn("this manager was demoted: stepping down to a worker (its tasks keep running)");
      const creds = await auth.stepDown(nodeId, self, [cfg.advertiseAddr!]);
      // The worker's files first, then the CA key goes: a crash after this starts a worker.
      await saveNodeCredentials(certsDir(dataDir), creds);
      await writeClusterConfig(dataDir, { role: "worker", advertiseAddr: cfg.advertiseAddr!, listenAddr: cfg.listenAddr!, managers: auth.managers().filter((m) => m !== self) });
      rmSync(caDir(dataDir), { recursive: true, force: true });
      rmSync(joinedEtcdTlsDir(dataDir), { recursive: true, force: true });
      steppingDown = true;
      restartWanted = true;
      await stopWork(false);
      await exit();
    };
    const reconcileRoles = (): void => {
      if (stepDown) return;
      for (const n of store.view((tx) => tx.list("nodes"))) {
        if (n.id === nodeId && n.role === "manager" && n.desiredRole === "worker") {
          stepDown = becomeWorker().catch((err: unknown) => {
            log.error({ err }, "stepping down failed; retrying");
            stepDown = undefined;
          });
          return;
        }
        if (n.desiredRole === "manager" && n.role === "worker") conns.promote(n.id);
      }
    };
    const tick = (): void => {
      reconcileRoles();
      stopRoles = clock.setTimer(1000, tick);
    };
    tick();
    roleChanged = reconcileRoles;
  }

  if (opts.demo) await ensureDemo(store, log);
  log.info({ socket: socketPath, nodeId: agent.nodeId, tasks: agent.runningTaskIds().length, ...(cfg ? { listen: cfg.listenAddr, advertise: cfg.advertiseAddr } : {}) }, cfg ? "baton manager is up" : "baton is up");
  const detach = async (): Promise<number> => {
    const n = await stopWork(false);
    await exit();
    return n;
  };
  return {
    socketPath,
    role: cfg ? "manager" : "single",
    nodeId,
    store,
    ...(joinCommand ? { joinCommand } : {}),
    ...(cfg ? { listenAddr: cfg.listenAddr! } : {}),
    detach,
    done,
    get restartWanted() {
      return restartWanted;
    },
  };
}

/**
 * The manager's store: SQLite in the data dir, an etcd cluster the user runs (`--store`, with
 * TLS from `--etcd-*`), or this host's managed etcd member (`init --ha`), started first.
 */
async function openStore(
  opts: UpOptions,
  cfg: ClusterConfig | undefined,
  ctx: { dataDir: string; clock: Clock; log: Logger; nodeId: string },
): Promise<{ store: Store; etcd?: EtcdStore; managed?: ManagedEtcd; etcdConnection?: EtcdConnection }> {
  const { dataDir, clock, log } = ctx;
  const storeLog = log.child({ component: "store" });
  if (cfg?.ha) {
    requireEtcdBinary();
    // A manager that joined has the etcd CA it was handed; only the first creates one.
    const ca = cfg.etcdJoin ? await ClusterCa.load(etcdCaDir(dataDir), { clock }) : await loadOrCreateEtcdCa(dataDir, clock);
    if (!ca) throw new BatonError("VALIDATION_FAILED", `${etcdCaDir(dataDir)} holds no etcd CA: this manager's join did not finish; \`baton leave\` is not possible for a manager, use a fresh --data-dir and join again`);
    const memberOpts = { dataDir, name: ctx.nodeId, advertise: cfg.advertiseAddr!, ca, log, clock };
    const managed = cfg.etcdJoin ? await joinManagedEtcd({ ...memberOpts, existing: cfg.etcdJoin }) : await startManagedEtcd(memberOpts);
    try {
      const etcd = await EtcdStore.open({ ...managed.connection, maxTxnOps: managed.maxTxnOps, clock, log: storeLog });
      return { store: etcd, etcd, managed, etcdConnection: managed.connection };
    } catch (err) {
      await managed.stop();
      throw err;
    }
  }
  const tlsFiles = opts.etcdTls ?? cfg?.etcdTls;
  const choice = parseStoreUrl(opts.store ?? cfg?.store, { tls: tlsFiles !== undefined });
  if (choice.backend === "sqlite") return { store: openSqliteStore(join(dataDir, "store.db"), { clock }) };
  const connection: EtcdConnection = { endpoints: choice.endpoints, ...(tlsFiles ? { tls: loadEtcdTls(tlsFiles) } : {}) };
  const etcd = await EtcdStore.open({ ...connection, clock, log: storeLog });
  return { store: etcd, etcd, etcdConnection: connection };
}

async function startWorker(opts: UpOptions, ctx: Context): Promise<RunningBaton> {
  const { dataDir, clock, log } = ctx;
  const nodeId = loadNodeId(join(dataDir, "agent"));
  const cfg = ctx.cfg;
  const creds = await loadNodeCredentials(certsDir(dataDir));
  if (!creds || !cfg) throw new BatonError("BAD_REQUEST", `${dataDir} has no cluster credentials: \`baton leave\`, then join again with --token`);
  const workerCfg = cfg;
  let credentials: NodeCredentials = creds;

  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  let exiting: Promise<void> | undefined;
  let stopping: Promise<number> | undefined;
  let leaving = false;
  let promoting: Promise<void> | undefined;
  let restartWanted = false;
  // eslint-disable-next-line prefer-const -- assigned once the session it needs exists
  let agent: Agent | undefined;
  /**
   * `baton node promote`: the manager certificate and the manager material over this worker's
   * certificate, saved as a manager join saves them; then Baton starts again on this data dir as
   * a manager (tasks run on: the agent re-adopts them).
   */
  const becomeManager = async (): Promise<void> => {
    const { keyPem, csrPem } = await createNodeKeyAndCsr(nodeId);
    const res = await fetchPromotion(session.connectedTo ?? workerCfg.managers[0]!, credentials, csrPem, clock);
    if (!res.manager || res.role !== "manager") throw new BatonError("UNAVAILABLE", "the manager answered the promotion without a manager certificate and material");
    const creds = { caCertPem: res.caCertPem, certPem: res.certPem, keyPem };
    const advertiseAddr = workerCfg.advertiseAddr ?? readNodeCert(res.certPem).addresses[0];
    if (!advertiseAddr) throw new BatonError("BAD_REQUEST", "this node has no advertise address: a manager needs one (join with --advertise-addr)");
    const listen = parseHostPort(workerCfg.listenAddr ?? `0.0.0.0:${DEFAULT_CLUSTER_PORT}`, "--listen-addr");
    const cfg = await adoptManagerMaterial(dataDir, res.manager, { credentials: creds, advertiseAddr, listenAddr: `${listen.host}:${listen.port}`, port: listen.port, clock });
    await writeClusterConfig(dataDir, cfg);
    log.warn({ nodeId }, "this worker was promoted: starting again as a manager (its tasks keep running)");
    restartWanted = true;
    await stopWork(false);
    await exit();
  };
  const session = new RemoteSession({
    managers: workerCfg.managers,
    // Every manager, as they said at registration: the next start fails over to any of them.
    onManagers: (managers) => void writeClusterConfig(dataDir, { ...workerCfg, managers }).catch((err: unknown) => log.warn({ err }, "manager list not saved")),
    credentials,
    clock,
    log: log.child({ component: "session" }),
    onPromote: () => {
      // Told again every second until it is a manager: only once it runs its tasks here.
      if (!agent) return;
      promoting ??= becomeManager().catch((err: unknown) => {
        log.error({ err }, "promotion to a manager failed; retrying when told again");
        promoting = undefined;
      });
    },
    onRemoved: (message) => {
      if (leaving) return;
      // Its tasks were replaced elsewhere when it was removed: running them on would be duplicates.
      log.error({ message }, "this node was removed from the cluster; stopping its tasks (`baton leave` forgets the cluster)");
      if (agent) void agent.stopAll();
    },
  });
  let parts: Awaited<ReturnType<typeof startNodeParts>>;
  try {
    parts = await startNodeParts(ctx, session, "worker", workerCfg.advertiseAddr, opts.dnsAddress);
  } catch (err) {
    if (!(err instanceof BatonError) || err.code !== "FORBIDDEN") throw err;
    // Removed while this baton was down: its tasks were replaced elsewhere, so they stop here,
    // and the node forgets the cluster so that a `baton join --token …` can start over.
    const records = new TaskRecords(join(dataDir, "agent", "tasks")).loadAll();
    new ProcessDriver(clock, { cgroups: Cgroups.detect() }).killStrays(new Set(records.map((r) => r.taskId)));
    const docker = new DockerDriver({ clock, log });
    if (await docker.isAvailable()) for (const o of await docker.listOwned(nodeId)) await docker.remove(o.handle);
    forgetCluster(dataDir);
    throw new BatonError("FORBIDDEN", `${err.message}: its tasks were stopped and its cluster credentials forgotten; join again with \`baton join --token TOKEN MANAGER\``);
  }
  const { mesh, meshSync, dns } = parts;
  agent = parts.agent;
  const nodeAgent = parts.agent;
  session.serveLogs({ open: (taskId, o, onLines) => readLocalLog(nodeAgent.logs, clock, taskId, o, onLines) });
  session.serveStats((taskIds) => nodeAgent.taskStats(taskIds));

  const stopRenewal = scheduleRenewal(clock, () => credentials.certPem, async () => {
    const { keyPem, csrPem } = await createNodeKeyAndCsr(nodeId);
    const res = await renewCertificate(session.connectedTo ?? workerCfg.managers[0]!, credentials, csrPem, clock);
    credentials = { caCertPem: res.caCertPem, certPem: res.certPem, keyPem };
    await saveNodeCredentials(certsDir(dataDir), credentials);
    session.setCredentials(credentials);
  }, log);

  const stopWork = (stopTasks: boolean): Promise<number> =>
    (stopping ??= (async () => {
      stopRenewal();
      const n = stopTasks ? await nodeAgent.stopAll() : nodeAgent.runningTaskIds().length;
      nodeAgent.detach();
      meshSync.stop();
      return n;
    })());
  const exit = (): Promise<void> =>
    (exiting ??= (async () => {
      session.close();
      await app.close();
      await mesh.close();
      await dns?.responder.close();
      await (await parts.containerDns)?.responder.close();
      ctx.lock.release();
      resolveDone();
    })());
  const app = await buildWorkerApp(
    {
      info: () => ({ version: BATON_VERSION, nodeId, hostname: hostname(), dataDir, pid: process.pid, role: "worker", managers: workerCfg.managers, connectedTo: session.connectedTo ?? null, ...(dns ? { dns: dns.address } : {}) }),
      shutdown: async ({ stopTasks }) => ({ stoppedTasks: await stopWork(stopTasks) }),
      leave: async () => {
        leaving = true;
        const stoppedTasks = await stopWork(true);
        await session.leave();
        forgetCluster(dataDir);
        return { stoppedTasks };
      },
      exit,
    },
    log,
  );
  const socketPath = await listenUnix(app, dataDir);
  log.info({ socket: socketPath, nodeId, managers: workerCfg.managers }, "baton worker is up");
  const detach = async (): Promise<number> => {
    const n = await stopWork(false);
    await exit();
    return n;
  };
  return {
    socketPath,
    role: "worker",
    nodeId,
    detach,
    done,
    get restartWanted() {
      return restartWanted;
    },
  };
}

/**
 * A first `baton join`: the token's role decides what this data dir becomes. A worker keeps its
 * certificate and the manager's address. A manager also gets the CA key (it signs certificates
 * when it leads), the shared store's URL and every manager's address, and listens like `init`.
 */
async function joinCluster(j: NonNullable<UpOptions["join"]>, ctx: { dataDir: string; clock: Clock; log: Logger }): Promise<ClusterConfig> {
  const { dataDir, clock, log } = ctx;
  const nodeId = loadNodeId(join(dataDir, "agent"));
  const manager = parseHostPort(j.manager, "manager address");
  const managerAddr = `${manager.host}:${manager.port}`;
  const advertiseAddr = j.advertiseAddr ? parseHostPort(j.advertiseAddr, "--advertise-addr").host : undefined;
  const joined = await joinWithToken({ token: j.token, nodeId, ...(advertiseAddr ? { addresses: [advertiseAddr] } : {}) }, httpsJoinTransport(managerAddr, clock));
  const creds = { caCertPem: joined.caCertPem, certPem: joined.certPem, keyPem: joined.keyPem };
  if (joined.role === "worker") {
    await saveNodeCredentials(certsDir(dataDir), creds);
    // --listen-addr is kept for a later promotion (a worker listens on nothing).
    const listenAddr = j.listenAddr ? parseHostPort(j.listenAddr, "--listen-addr") : undefined;
    const cfg: ClusterConfig = { role: "worker", managers: [managerAddr], ...(advertiseAddr ? { advertiseAddr } : {}), ...(listenAddr ? { listenAddr: `${listenAddr.host}:${listenAddr.port}` } : {}) };
    await writeClusterConfig(dataDir, cfg);
    log.info({ manager: managerAddr, nodeId }, "joined the cluster as a worker");
    return cfg;
  }
  if (!joined.manager) throw new BatonError("UNAVAILABLE", `manager ${managerAddr} issued a manager certificate without the cluster's CA key and store: it is older than this baton`);
  // As `init`: the host's one address when --advertise-addr is not given (an error naming them when it has several).
  const ownAddr = advertiseAddr ?? detectAdvertiseAddr();
  const listen = parseHostPort(j.listenAddr ?? `0.0.0.0:${DEFAULT_CLUSTER_PORT}`, "--listen-addr");
  const cfg = await adoptManagerMaterial(dataDir, joined.manager, { credentials: creds, advertiseAddr: ownAddr, listenAddr: `${listen.host}:${listen.port}`, port: listen.port, clock });
  await writeClusterConfig(dataDir, cfg);
  log.info({ manager: managerAddr, nodeId, store: cfg.store ?? "managed etcd" }, "joined the cluster as a manager");
  return cfg;
}

/** A worker forgets its cluster: a later `baton join` starts over with a new identity. */
function forgetCluster(dataDir: string): void {
  for (const p of [certsDir(dataDir), join(dataDir, "cluster.json"), join(dataDir, "agent", "node-id")]) rmSync(p, { recursive: true, force: true });
}

/** Renews a certificate once a third of its life is left (checked hourly, and retried until it works). */
function scheduleRenewal(clock: Clock, current: () => string, renew: () => Promise<void>, log: Logger): () => void {
  let cancel = (): void => undefined;
  let stopped = false;
  const HOUR = 60 * 60 * 1000;
  const arm = (): void => {
    if (stopped) return;
    const due = renewAt(current());
    cancel = clock.setTimer(Math.min(HOUR, Math.max(0, due - clock.now())), () => {
      if (!needsRenewal(current(), clock.now())) return arm();
      renew().then(
        () => {
          log.info("node certificate renewed");
          arm();
        },
        (err: unknown) => {
          log.warn({ err }, "certificate renewal failed; retrying");
          cancel = clock.setTimer(60_000, arm);
        },
      );
    });
  };
  arm();
  return () => {
    stopped = true;
    cancel();
  };
}

/** The containers' DNS address of the last start (containers still running were given it). */
const CONTAINER_DNS_FILE = "container-dns";
function readContainerDns(dataDir: string): string | undefined {
  try {
    return readFileSync(join(dataDir, CONTAINER_DNS_FILE), "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}
function writeContainerDns(dataDir: string, host: string): void {
  writeFileSync(join(dataDir, CONTAINER_DNS_FILE), host + "\n");
}

/** The DNS responder for service names; Baton runs on without it (a port taken, no root). */
async function startDns(sync: MeshSync, address: string, log: Logger): Promise<{ responder: DnsResponder; address: string } | undefined> {
  const i = address.lastIndexOf(":");
  const host = address.slice(0, i);
  try {
    const responder = await startDnsResponder({ host, port: Number(address.slice(i + 1)), resolve: (name) => sync.resolve(name), log });
    return { responder, address: `${host}:${responder.port}` };
  } catch (err) {
    log.warn({ err, address }, "DNS responder for service names not started; service addresses still work by env var");
    return undefined;
  }
}

async function ensureDemo(store: Store, log: Logger): Promise<void> {
  const server = fileURLToPath(new URL("../examples/hello/server.js", import.meta.url));
  if (store.view((tx) => tx.serviceByName("hello"))) return;
  const spec = resolveServiceSpec({ name: "hello", replicas: 2, command: [process.execPath, server], env: ["GREETING=hello from baton"], healthcheck: { http: "/", interval: "5s", timeout: "2s" } });
  await store.update((tx) => tx.create("services", { id: newId(), spec, specVersion: 1 }));
  log.info({ service: "hello" }, "demo service created: `baton service ps hello`, then curl the PORT it shows");
}
