import { test } from "node:test";
import assert from "node:assert/strict";
import { silentLogger } from "../lib/log.js";
import { FakeClock } from "../../test/harness/fake-clock.js";
import type { AgentSession, EndpointsChange, ServiceEndpoints } from "../dispatcher/protocol.js";
import { Mesh } from "./mesh.js";
import { MeshSync } from "./mesh-sync.js";

const svc = (name: string, vip: string, networks?: string[]): ServiceEndpoints => ({
  serviceId: `id-${name}`,
  name,
  vip,
  ports: [{ target: 28_080, protocol: "tcp", mode: "ingress" }],
  balance: "round-robin",
  waitForBackendMs: 0,
  backends: [],
  ...(networks ? { networks } : {}),
});

/** A session that only delivers the endpoints given (what MeshSync reads of it). */
function sessionWith(services: ServiceEndpoints[]): AgentSession {
  return {
    register: async () => ({ heartbeatPeriodMs: 1000 }),
    heartbeat: async () => undefined,
    assignments: () => () => undefined,
    reportStatus: async () => undefined,
    endpoints: (fn: (c: EndpointsChange) => void) => (fn({ type: "full", services }), () => undefined),
    close: () => undefined,
  };
}

test("discovery is scoped by network: env vars and DNS answers only for services sharing one", async (t) => {
  const mesh = new Mesh({ clock: new FakeClock(), log: silentLogger() });
  t.after(() => mesh.close());
  const containers = new Map([["172.30.0.5", ["net-a"]], ["172.17.0.9", []]]);
  const sync = new MeshSync({
    session: sessionWith([svc("web", "127.77.9.1"), svc("api", "127.77.9.2", ["net-a"]), svc("db", "127.77.9.3", ["net-b"]), svc("both", "127.77.9.4", ["net-a", "net-b"])]),
    mesh,
    log: silentLogger(),
    containerRange: true,
    networksOfAddress: (ip) => containers.get(ip),
  });
  sync.start();
  t.after(() => sync.stop());
  const hosts = (env: Record<string, string>): string[] => Object.keys(env).filter((k) => k.endsWith("_SERVICE_HOST")).sort();

  // No networks: the default network, as every service was before networks existed.
  assert.deepEqual(hosts(sync.discoveryEnv({})), ["WEB_SERVICE_HOST"]);
  assert.deepEqual(hosts(sync.discoveryEnv({ networks: ["net-a"] })), ["API_SERVICE_HOST", "BOTH_SERVICE_HOST"]);
  assert.deepEqual(hosts(sync.discoveryEnv({ networks: ["net-b"] })), ["BOTH_SERVICE_HOST", "DB_SERVICE_HOST"]);
  // Containers get the VIP's twin in the container range, which they can reach.
  assert.equal(sync.discoveryEnv({ networks: ["net-a"], container: true }).API_SERVICE_HOST, "198.18.9.2");
  assert.equal(sync.discoveryEnv({ networks: ["net-a"] }).API_SERVICE_HOST, "127.77.9.2");

  // DNS: a container on net-a finds api and both, not web or db; on the default bridge only web.
  assert.deepEqual(sync.resolve("api", "172.30.0.5"), ["198.18.9.2"]);
  assert.deepEqual(sync.resolve("Both.", "172.30.0.5"), ["198.18.9.4"]);
  assert.equal(sync.resolve("db", "172.30.0.5"), undefined);
  assert.equal(sync.resolve("web", "172.30.0.5"), undefined);
  assert.deepEqual(sync.resolve("web", "172.17.0.9"), ["198.18.9.1"]);
  assert.equal(sync.resolve("api", "172.17.0.9"), undefined);
  // An address that is no task's (a container outside Baton): the default network.
  assert.deepEqual(sync.resolve("web", "10.9.9.9"), ["198.18.9.1"]);
  assert.equal(sync.resolve("api", "10.9.9.9"), undefined);
  // Host processes share the host's network, where every VIP is reachable: every name, as VIPs.
  assert.deepEqual(sync.resolve("db", "127.0.0.1"), ["127.77.9.3"]);

  // Traffic to a container-range address: only from containers sharing a network (or the host).
  assert.equal(sync.admits("id-api", "172.30.0.5"), true);
  assert.equal(sync.admits("id-db", "172.30.0.5"), false);
  assert.equal(sync.admits("id-web", "172.17.0.9"), true);
  assert.equal(sync.admits("id-api", "::ffff:172.17.0.9"), false);
  assert.equal(sync.admits("id-db", "127.0.0.1"), true);
  assert.equal(sync.admits("id-db", "198.18.9.3"), true);
  assert.equal(sync.admits("id-gone", "172.17.0.9"), false);
});
