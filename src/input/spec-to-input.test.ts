import { test } from "node:test";
import assert from "node:assert/strict";
import { resolveServiceSpec } from "./resolve.js";
import { specToInput } from "./spec-to-input.js";
import type { ServiceSpecInput } from "./schemas.js";

const inputs: ServiceSpecInput[] = [
  { name: "plain", command: ["node", "server.js"] },
  {
    name: "full",
    command: ["node", "server.js", "--x"],
    replicas: 4,
    env: ["A=1", "B=two"],
    workdir: "/srv",
    labels: { tier: "web" },
    restartPolicy: { condition: "on-failure", delay: "2s", maxAttempts: 3, window: "1m" },
    healthcheck: { http: ":8081/healthz", interval: "5s", timeout: "1s", retries: 2, startPeriod: "3s" },
    probes: { readiness: { http: "/ready", period: "200ms", failureThreshold: 1 }, liveness: { cmd: "test -e /tmp/ok" }, startup: { tcp: 0, failureThreshold: 30 } },
    stopSignal: "SIGINT",
    stopGracePeriod: "20s",
    constraints: ["node.labels.tier==web"],
    placementPrefs: ["spread=node.labels.zone"],
    maxReplicasPerNode: 2,
    reserveCpus: 0.5,
    reserveMemory: "128m",
    limitCpus: 1.5,
    limitMemory: "256m",
    taskHistoryLimit: 3,
    logMaxSize: "1m",
    publish: ["8080:80/http", "published=9090,target=90,protocol=udp"],
    loadBalance: "least-connections",
    waitForBackend: "2s",
    update: { parallelism: 2, delay: "5s", failureAction: "rollback", monitor: "10s", maxFailureRatio: 0.25, strategy: "canary", canarySteps: [5, 100], canaryInterval: "1m", canaryMaxErrorRate: "2%" },
    rollback: { parallelism: 0, order: "start-first" },
  },
  { name: "global", mode: "global", command: ["agent"], healthcheck: { cmd: "true" }, publish: ["published=7000,target=70,mode=host"] },
];

// A service stored before `specInput` was kept can still be updated: its spec goes back to the
// input form and resolves to the same spec.
test("a resolved spec goes back to its input form and resolves to the same spec", () => {
  for (const input of inputs) {
    const spec = resolveServiceSpec(input);
    assert.deepEqual(resolveServiceSpec(specToInput(spec)), spec, input.name);
  }
});
