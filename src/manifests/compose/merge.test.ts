import { test } from "node:test";
import assert from "node:assert/strict";
import { mergeStackFiles } from "./merge.js";

test("a later file overrides an earlier one: maps by key, lists by kind", () => {
  const base = {
    services: {
      web: {
        image: "nginx:1.24",
        command: ["nginx", "-g", "daemon off;"],
        environment: ["A=1", "B=2"],
        ports: ["80:80"],
        deploy: { replicas: 2, labels: { team: "a" }, placement: { constraints: ["node.role == worker"] } },
        networks: ["front"],
      },
      db: { image: "postgres" },
    },
    networks: { front: { driver: "overlay" } },
  };
  const override = {
    services: {
      web: {
        image: "nginx:1.25",
        command: ["nginx"],
        environment: { B: "3", C: "4" },
        ports: ["443:443", "80:80"],
        deploy: { replicas: 5, labels: { tier: "front" }, placement: { constraints: ["node.labels.zone == a"] } },
        networks: { back: null },
      },
    },
    networks: { front: { internal: true } },
  };
  assert.deepEqual(mergeStackFiles([base, override]), {
    services: {
      web: {
        image: "nginx:1.25",
        command: ["nginx"],
        environment: { A: "1", B: "3", C: "4" },
        ports: ["80:80", "443:443"],
        deploy: { replicas: 5, labels: { team: "a", tier: "front" }, placement: { constraints: ["node.role == worker", "node.labels.zone == a"] } },
        networks: { front: null, back: null },
      },
      db: { image: "postgres" },
    },
    networks: { front: { driver: "overlay", internal: true } },
  });
});

test("one file is returned as it is; a non-mapping file replaces (validation then names it)", () => {
  const only = { services: { a: { image: "x" } } };
  assert.equal(mergeStackFiles([only]), only);
  assert.deepEqual(mergeStackFiles([only, ["not", "a", "mapping"]]), ["not", "a", "mapping"]);
});
