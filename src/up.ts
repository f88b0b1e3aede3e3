import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";
import { Agent } from "./agent/agent.js";
import { BATON_VERSION } from "./lib/version.js";
import { ProcessDriver } from "./agent/drivers/process/process-driver.js";
import { localLogSource } from "./agent/logs/local-log-source.js";
import { buildApp } from "./api/app.js";
import { systemClock, type Clock } from "./lib/clock.js";
import { lockDataDir } from "./lib/data-dir-lock.js";
import { newId } from "./lib/ids.js";
import { createLogger, type Logger } from "./lib/log.js";
import { Manager } from "./manager/manager.js";
import { Mesh } from "./mesh/mesh.js";
import { MESH_ADDRESS } from "./model/service-address.js";
import { MeshSync } from "./mesh/mesh-sync.js";
import { startDnsResponder, type DnsResponder } from "./mesh/dns.js";
import { resolveServiceSpec } from "./input/resolve.js";
import { openSqliteStore } from "./store/sqlite/sqlite-store.js";
import type { Store } from "./store/store.js";

export interface UpOptions {
  dataDir: string;
  /** Create the demo service `hello` (2 replicas of examples/hello) when it does not exist. */
  demo?: boolean;
  logLevel?: string;
  pretty?: boolean;
  /** host:port of the DNS responder for service names. @default 127.77.0.1:53 */
  dnsAddress?: string;
  clock?: Clock;
}

export interface RunningBaton {
  socketPath: string;
  store: Store;
  /** Leaves tasks running (Ctrl-C, SIGTERM, upgrades). Returns how many were left running. */
  detach(): Promise<number>;
  done: Promise<void>;
}


/**
 * `baton up`: the manager (SQLite store, controllers, dispatcher), an agent with the process
 * driver on an in-memory session, and the API on DIR/baton.sock (0600). The same components a
 * cluster runs; only the session transport and the store differ.
 */
export async function startUp(opts: UpOptions): Promise<RunningBaton> {
  const dataDir = resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const clock = opts.clock ?? systemClock;
  const log = createLogger({ ...(opts.logLevel ? { level: opts.logLevel } : {}), ...(opts.pretty ? { pretty: true } : {}) });
  const lock = lockDataDir(dataDir);

  const store = openSqliteStore(join(dataDir, "store.db"), { clock });
  const manager = new Manager({ store, clock, log });
  manager.start();
  const session = manager.dispatcher.localSession();
  // The mesh: service addresses, published ports, and draining before every stop.
  const mesh = new Mesh({ clock, log });
  const meshSync = new MeshSync({ session, mesh, log: log.child({ component: "mesh" }) });
  const dns = await startDns(meshSync, opts.dnsAddress ?? DEFAULT_DNS_ADDRESS, log);
  const agent = new Agent({
    session,
    driver: new ProcessDriver(clock),
    clock,
    log: log.child({ component: "agent" }),
    dataDir: join(dataDir, "agent"),
    beforeStop: (taskId, graceMs) => meshSync.drain(taskId, graceMs),
    discoveryEnv: () => ({ ...meshSync.discoveryEnv(), ...(dns ? { BATON_DNS: dns.address } : {}) }),
    trafficByTask: () => meshSync.trafficByTask(),
  });
  meshSync.start();
  await agent.start();

  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  let stopping: Promise<number> | undefined;
  let exiting: Promise<void> | undefined;
  // Controllers stop first, so nothing is restarted while tasks are being stopped.
  const stopWork = (stopTasks: boolean): Promise<number> =>
    (stopping ??= (async () => {
      manager.stopControllers();
      const n = stopTasks ? await agent.stopAll() : agent.runningTaskIds().length;
      agent.detach();
      manager.stop();
      meshSync.stop();
      return n;
    })());
  const exit = (): Promise<void> =>
    (exiting ??= (async () => {
      await app.close();
      await mesh.close();
      await dns?.responder.close();
      store.close();
      rmSync(join(dataDir, "baton.pid"), { force: true });
      lock.release();
      resolveDone();
    })());

  const app: FastifyInstance = await buildApp({
    store,
    clock,
    log,
    logs: localLogSource(agent.logs, clock),
    system: {
      info: () => ({ version: BATON_VERSION, nodeId: agent.nodeId, hostname: hostname(), dataDir, store: "sqlite", pid: process.pid, ...(dns ? { dns: dns.address } : {}) }),
      shutdown: async ({ stopTasks }) => ({ stoppedTasks: await stopWork(stopTasks) }),
      exit,
    },
  });
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

  if (opts.demo) await ensureDemo(store, log);
  log.info({ socket: socketPath, nodeId: agent.nodeId, tasks: agent.runningTaskIds().length }, "baton is up");
  const detach = async (): Promise<number> => {
    const n = await stopWork(false);
    await exit();
    return n;
  };
  return { socketPath, store, detach, done };
}

/** 127.77.0.1 is the mesh's own address in the service address range (model/service-address.ts). */
const DEFAULT_DNS_ADDRESS = `${MESH_ADDRESS}:53`;

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
