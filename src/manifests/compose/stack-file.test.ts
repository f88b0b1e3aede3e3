import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { BatonError, formatPath } from "../../lib/errors.js";
import { readStack } from "./stack-file.js";

const SEED = resolve(fileURLToPath(new URL("../../../test/fixtures/stacks/docker-stack.yml", import.meta.url)));
const dir = mkdtempSync(join(tmpdir(), "baton-stackfile-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
/** Writes a stack file (and optional neighbours) into a fresh directory; returns its path. */
function stackFile(text: string, extra: Record<string, string> = {}): string {
  const d = join(dir, String(n++));
  mkdirSync(d);
  for (const [name, content] of Object.entries(extra)) writeFileSync(join(d, name), content);
  writeFileSync(join(d, "stack.yml"), text);
  return join(d, "stack.yml");
}
/** The lines the CLI prints for a refused file: `path: problem (line N)`. */
function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof BatonError, `a BatonError, not ${String(err)}`);
    return err.fields.map((f) => `${formatPath(f.path)}: ${f.problem}`);
  }
  assert.fail("the file was accepted");
}

describe("the seed's docker-stack.yml", () => {
  test("attachable is carried to the network's body", () => {
    const spec = readStack([stackFile("services:\n  web: {image: nginx}\nnetworks:\n  front: {attachable: true}\n  back: {attachable: false}\n")], "s", {});
    assert.deepEqual(spec.warnings, []);
    assert.deepEqual(spec.objects.filter((o) => o.kind === "network").map((o) => [o.name, o.body?.attachable]), [["s_front", true], ["s_back", false]]);
  });

  test("translates to the API bodies of issue 13's contract", () => {
    const spec = readStack([SEED], "myapp", {});
    assert.deepEqual(spec.warnings, []);
    assert.deepEqual(spec.services.map((s) => s.input.name), ["myapp_web", "myapp_api", "myapp_db"]);
    const [web, api, db] = spec.services.map((s) => s.input);
    assert.deepEqual(web, {
      name: "myapp_web",
      labels: { "com.docker.stack.namespace": "myapp" },
      replicas: 3,
      driver: "docker",
      image: "nginx:alpine",
      command: [],
      restartPolicy: { condition: "on-failure", delay: "5s", maxAttempts: 3 },
      publish: [{ target: 80, published: 80 }],
      update: { parallelism: 1, delay: "10s", failureAction: "rollback", monitor: "30s" },
      rollback: { parallelism: 1 },
      constraints: ["node.role == worker"],
      limitCpus: 0.5,
      limitMemory: "256M",
      networks: ["myapp_frontend"],
    });
    assert.deepEqual(api!.networks, ["myapp_frontend", "myapp_backend"]);
    assert.deepEqual(api!.secrets, [{ source: "db_password", target: "db_password" }], "an external secret keeps its own name; the file is named after the key");
    assert.deepEqual(db!.mounts, [{ type: "volume", source: "myapp_pgdata", target: "/var/lib/postgresql/data" }]);
    assert.deepEqual(db!.constraints, ["node.labels.tier == data"]);
    assert.deepEqual(
      spec.objects.map((o) => [o.kind, o.name, o.external, o.body]),
      [
        ["network", "myapp_frontend", false, { name: "myapp_frontend", labels: { "com.docker.stack.namespace": "myapp" }, driver: "overlay" }],
        ["network", "myapp_backend", false, { name: "myapp_backend", labels: { "com.docker.stack.namespace": "myapp" }, driver: "overlay", internal: true }],
        ["volume", "myapp_pgdata", false, { name: "myapp_pgdata", labels: { "com.docker.stack.namespace": "myapp" }, driver: "local" }],
        ["secret", "db_password", true, undefined],
      ],
    );
  });
});

describe("stack file features", () => {
  test("interpolation from the environment over .env, env_file under environment, x- extensions and anchors, version ignored", () => {
    const path = stackFile(
      `version: "3.9"
x-defaults: &defaults
  x-baton: {driver: process}
  stop_grace_period: 20s
x-anything: {whatever: [1, 2]}
services:
  web:
    <<: *defaults
    x-note: ignored
    command: node server.js --port \${PORT:-8080} --name "\${NAME}"
    env_file: [web.env]
    environment:
      - FROM_FILE_OVERRIDDEN=environment
      - FROM_SHELL
      - NOT_SET_ANYWHERE
    working_dir: ./app
    deploy:
      mode: global
      labels: [tier=front]
    labels: {team: a}
    healthcheck: {test: ["CMD", "node", "check.js", "a b"], interval: 5s, retries: 2, start_period: 1m30s}
`,
      { ".env": "NAME=from-dotenv\nPORT=9000\n", "web.env": "# comment\nFROM_FILE=1\nFROM_FILE_OVERRIDDEN=file\nQUOTED=\"a b\"\n" },
    );
    const spec = readStack([path], "st", { PORT: "7000", FROM_SHELL: "shell" });
    const web = spec.services[0]!.input;
    assert.deepEqual(web.command, ["node", "server.js", "--port", "7000", "--name", "from-dotenv"], "the shell wins over .env");
    assert.deepEqual(web.env, ["FROM_FILE=1", "FROM_FILE_OVERRIDDEN=environment", "QUOTED=a b", "FROM_SHELL=shell"]);
    assert.equal(web.driver, "process");
    assert.equal(web.workdir, join(path, "..", "app"));
    assert.equal(web.mode, "global");
    assert.equal(web.stopGracePeriod, "20s");
    assert.deepEqual(web.labels, { team: "a", tier: "front", "com.docker.stack.namespace": "st" });
    assert.deepEqual(web.healthcheck, { cmd: "node check.js 'a b'", interval: "5s", retries: 2, startPeriod: "1m30s" });
  });

  test("ports, mounts, secrets and configs in short and long forms; modes in octal; warnings list unsupported keys", () => {
    const path = stackFile(
      `services:
  app:
    image: registry:5000/team/app:1.2
    command: ["serve"]
    entrypoint: /bin/entry --flag
    build: .
    privileged: true
    ports: ["8080:80", "9000", "5353:53/udp", {target: 443, published: "8443", mode: host}]
    volumes: ["data:/data:ro", "./conf:/etc/app", {type: tmpfs, target: /tmp, tmpfs: {size: 64M}}, "/cache", {type: volume, target: /spool}]
    tmpfs: /run
    secrets: [token, {source: cert, target: tls.pem, mode: 0400, uid: "1000"}]
    configs: [{source: conf, target: /etc/app.conf, mode: 0444}]
    deploy:
      endpoint_mode: vip
      placement: {preferences: [{spread: node.labels.zone}], max_replicas_per_node: 2}
      resources: {reservations: {cpus: 0.25, memory: 64M}, limits: {pids: 100}}
volumes:
  data: {}
secrets:
  token: {file: ./token.txt}
  cert: {external: {name: prod_cert}}
configs:
  conf: {content: "listen 80"}
`,
      { "token.txt": "s3cret" },
    );
    const spec = readStack([path], "st", {});
    const app = spec.services[0]!.input;
    assert.deepEqual(app.publish, [{ target: 80, published: 8080 }, { target: 9000 }, { target: 53, published: 5353, protocol: "udp" }, { target: 443, published: 8443, mode: "host" }]);
    assert.deepEqual(app.mounts, [
      { type: "volume", source: "st_data", target: "/data", readOnly: true },
      { type: "bind", source: join(path, "..", "conf"), target: "/etc/app" },
      { type: "tmpfs", target: "/tmp", tmpfsSize: "64M" },
      { type: "volume", target: "/cache" },
      { type: "volume", target: "/spool" },
      { type: "tmpfs", target: "/run" },
    ]);
    assert.deepEqual(app.secrets, [{ source: "st_token", target: "token" }, { source: "prod_cert", target: "tls.pem", mode: 0o400, uid: "1000" }]);
    assert.deepEqual(app.configs, [{ source: "st_conf", target: "/etc/app.conf", mode: 0o444 }]);
    assert.deepEqual(app.entrypoint, ["/bin/entry", "--flag"]);
    assert.equal(app.endpointMode, "vip");
    assert.deepEqual(app.placementPrefs, ["spread=node.labels.zone"]);
    assert.equal(app.maxReplicasPerNode, 2);
    assert.equal(app.reserveCpus, 0.25);
    const token = spec.objects.find((o) => o.key === "token")!;
    assert.equal(Buffer.from(token.body!.data as string, "base64").toString(), "s3cret");
    assert.equal(spec.objects.find((o) => o.key === "conf")!.body!.data, Buffer.from("listen 80").toString("base64"));
    assert.equal(spec.warnings.length, 1);
    assert.match(spec.warnings[0]!, /services\.app\.build \(line 6\), services\.app\.privileged \(line 7\), services\.app\.deploy\.resources\.limits\.pids \(line 16\)/);
  });

  test("several -c files merge, later wins; an error names the file and line", () => {
    const base = stackFile(`services:\n  web:\n    x-baton: {driver: process}\n    command: node a.js\n    deploy: {replicas: 2}\n`);
    const over = join(base, "..", "override.yml");
    writeFileSync(over, `services:\n  web:\n    deploy: {replicas: 5}\n    environment: {A: "1"}\n`);
    const spec = readStack([base, over], "m", {});
    assert.equal(spec.services[0]!.input.replicas, 5);
    assert.deepEqual(spec.services[0]!.input.env, ["A=1"]);
    writeFileSync(over, `services:\n  web:\n    deploy: {replicas: many}\n`);
    assert.deepEqual(problemsOf(() => readStack([base, over], "m", {})), ["services.web.deploy.replicas: must be an integer (override.yml line 3)"]);
  });

  test("depends_on orders creation", () => {
    const path = stackFile(`services:\n  web: {image: nginx, depends_on: [api]}\n  api: {image: api, depends_on: {db: {condition: service_started}}}\n  db: {image: postgres}\n`);
    assert.deepEqual(readStack([path], "s", {}).services.map((s) => s.key), ["db", "api", "web"]);
  });
});

const BOMB = `a: &a [x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
services: {web: {image: nginx, x-bomb: *f}}
`;
const svc = (body: string): string => `services:\n  web:\n    image: nginx\n${body}`;

/** 30 malformed stack files: each is refused with the path (and line) of its mistake. */
const MALFORMED: [string, string, RegExp, Record<string, string>?][] = [
  ["replicas below 0", svc("    deploy:\n      replicas: -1\n"), /^services\.web\.deploy\.replicas: must be an integer >= 0 \(line 5\)$/],
  ["replicas as a word", svc("    deploy: {replicas: three}\n"), /^services\.web\.deploy\.replicas: must be an integer \(line 4\)$/],
  ["a typo in a key", svc("    deploy: {replcas: 3}\n"), /^services\.web\.deploy\.replcas: unknown key \(did you mean replicas\?\) \(line 4\)$/],
  ["a deploy key on the service", svc("    replicas: 3\n"), /^services\.web\.replicas: unknown key \(did you mean deploy\.replicas\?\) \(line 4\)$/],
  ["environment as a number", svc("    environment: 12\n"), /^services\.web\.environment: must be a list of KEY=VALUE or a mapping of KEY: VALUE \(line 4\)$/],
  ["ports as a mapping", svc("    ports: {web: 80}\n"), /^services\.web\.ports: must be a list \(line 4\)$/],
  ["a bad duration", svc("    deploy:\n      update_config: {delay: 10x}\n"), /^services\.web\.deploy\.update_config\.delay: invalid duration "10x" \(use e\.g\. 500ms, 10s, 1m30s\) \(line 5\)$/],
  ["a bad stop_grace_period", svc("    stop_grace_period: soon\n"), /^services\.web\.stop_grace_period: invalid duration "soon"/],
  ["a bad healthcheck interval", svc("    healthcheck: {test: [CMD, true], interval: 1 minute}\n"), /^services\.web\.healthcheck\.interval: invalid duration "1 minute"/],
  ["a bad failure_action", svc("    deploy: {update_config: {failure_action: explode}}\n"), /^services\.web\.deploy\.update_config\.failure_action: must be one of: continue, rollback, pause \(not "explode"\) \(line 4\)$/],
  ["a job mode", svc("    deploy: {mode: replicated-job}\n"), /^services\.web\.deploy\.mode: must be one of: replicated, global/],
  ["a constraint without ==", svc("    deploy:\n      placement:\n        constraints: [node.role = worker]\n"), /^services\.web\.deploy\.placement\.constraints\[0\]: "node\.role = worker" is not KEY==VALUE or KEY!=VALUE \(line 6\)$/],
  ["an unknown constraint key", svc("    deploy:\n      placement:\n        constraints: [\"engine.labels.x == y\"]\n"), /^services\.web\.deploy\.placement\.constraints\[0\]: unknown constraint key "engine\.labels\.x"/],
  ["a bad spread preference", svc("    deploy: {placement: {preferences: [{spread: zone}]}}\n"), /^services\.web\.deploy\.placement\.preferences\[0\]\.spread: "zone" is not node\.labels\.<name>/],
  ["a bad memory size", svc("    deploy: {resources: {limits: {memory: 12Q}}}\n"), /^services\.web\.deploy\.resources\.limits\.memory: "12Q" is not a size/],
  ["bad cpus", svc("    deploy: {resources: {limits: {cpus: half}}}\n"), /^services\.web\.deploy\.resources\.limits\.cpus: "half" is not a number of CPUs/],
  ["global with replicas", svc("    deploy: {mode: global, replicas: 2}\n"), /^services\.web\.deploy\.replicas: a global service runs one task per node/],
  ["an unknown service in depends_on", svc("    depends_on: [nope]\n"), /^services\.web\.depends_on\[0\]: service "nope" is not defined in this stack \(line 4\)$/],
  ["a dependency cycle", "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n", /^services\.a\.depends_on: dependency cycle: a → b → a/],
  ["an undeclared secret", svc("    secrets: [db_password]\n"), /^services\.web\.secrets\[0\]: secret "db_password" is not declared in the top-level secrets \(line 4\)$/],
  ["an undeclared network", svc("    networks: [front]\n"), /^services\.web\.networks\[0\]: network "front" is not declared in the top-level networks/],
  ["an undeclared named volume", svc("    volumes: [\"pgdata:/var/lib/data\"]\n"), /^services\.web\.volumes\[0\]: volume "pgdata" is not declared in the top-level volumes/],
  ["a secret file that does not exist", svc("    secrets: [s]\nsecrets:\n  s: {file: ./missing.txt}\n"), /^secrets\.s\.file: cannot read .*missing\.txt: ENOENT \(line 6\)$/],
  ["a secret with two sources", "services: {web: {image: x}}\nsecrets:\n  s: {file: ./a, environment: A}\n", /^secrets\.s: give exactly one of file, environment or external: true \(line 3\)$/],
  ["a network driver Baton lacks", "services: {web: {image: x}}\nnetworks:\n  n: {driver: macvlan}\n", /^networks\.n\.driver: must be one of: overlay, bridge \(not "macvlan"\) \(line 3\)$/],
  ["dnsrr with an ingress port", svc("    ports: [\"8080:80\"]\n    deploy: {endpoint_mode: dnsrr}\n"), /^services\.web\.deploy\.endpoint_mode: dnsrr has no service address: publish ports with mode=host, or use vip \(line 5\)$/],
  ["a port range", svc("    ports: [\"8000-8010:80\"]\n"), /^services\.web\.ports\[0\]: "8000-8010:80": port ranges are not supported/],
  ["no image and no process driver", "services:\n  web:\n    command: node a.js\n", /^services\.web\.image: is required \(or run a command on the process driver: x-baton: \{driver: process\}\) \(line 2\)$/],
  ["a required variable", svc("    environment: [\"DB=${DB_HOST:?set DB_HOST}\"]\n"), /^services\.web\.environment\[0\]: required variable DB_HOST is not set: set DB_HOST \(line 4\)$/],
  ["a YAML bomb", BOMB, /^stack\.yml: too many alias expansions \(more than 100\): refused as a possible YAML bomb$/],
  ["an anchor used inside itself", "services: &s\n  web: {image: x, loop: *s}\n", /^services\.web\.loop: an anchor is used inside itself \(an endless structure\) \(line 2\)$/],
  ["duplicate keys", "services:\n  web: {image: x}\n  web: {image: y}\n", /^stack\.yml: Map keys must be unique \(line 3\)$/],
  ["a syntax error", "services:\n  web: [image: x\n", /^stack\.yml: .* \(line \d\)$/],
  ["no services", "version: '3.9'\nservices: {}\n", /^services: must not be empty \(line 2\)$/],
  ["nesting thousands of levels deep", `services: {web: {image: x, x-d: ${"[".repeat(20000)}${"]".repeat(20000)}}}\n`, /^stack\.yml: nested too deeply to parse$/],
  ["nesting a hundred levels deep", `services: {web: {image: x, x-d: ${"[".repeat(100)}${"]".repeat(100)}}}\n`, /^stack\.yml: services\.web\.x-d\[0\]…: nested more than 64 levels deep$/],
  ["a file that is not a mapping", "- web\n- db\n", /^stack\.yml: must be a mapping \(line 1\)$/],
  ["a top-level typo", "services: {web: {image: x}}\nnetwork: {}\n", /^network: unknown key \(did you mean networks\?\) \(line 2\)$/],
];

describe("malformed stack files are refused with the path and line, before anything is sent", () => {
  for (const [name, text, expected, extra] of MALFORMED) {
    test(name, () => {
      const problems = problemsOf(() => readStack([stackFile(text, extra)], "s", {}));
      assert.ok(problems.some((p) => expected.test(p)), `expected ${expected}, got:\n${problems.join("\n")}`);
    });
  }

  test(`there are at least 30 of them (${MALFORMED.length})`, () => assert.ok(MALFORMED.length >= 30));

  test("a 10 MB file is refused before it is parsed", () => {
    const path = stackFile("x");
    writeFileSync(path, `services: {web: {image: x}}\n# ${"a".repeat(10 * 1024 * 1024)}\n`);
    assert.deepEqual(problemsOf(() => readStack([path], "s", {})), ["stack.yml: 10 MiB is larger than the 1 MiB a stack file may be"]);
  });

  test("a missing file, a bad stack name", () => {
    assert.match(problemsOf(() => readStack([join(dir, "nope.yml")], "s", {}))[0]!, /^nope\.yml: cannot read .*nope\.yml: ENOENT$/);
    assert.throws(() => readStack([SEED], "bad name!", {}), /is not a stack name/);
  });

  test("schema problems and Baton's own rules are listed together; a refused value is not reported twice", () => {
    const problems = problemsOf(() =>
      readStack([stackFile("services:\n  web:\n    image: 5\n    deploy:\n      replicas: -1\n      placement: {constraints: [node.role = x]}\n    secrets: [s]\n    depends_on: [db]\n  db: {image: 7}\nsecrets:\n  s: {file: 5}\n")], "s", {}),
    );
    assert.deepEqual(problems, [
      "services.web.image: must be a string (line 3)",
      "services.web.deploy.replicas: must be an integer >= 0 (line 5)",
      "services.db.image: must be a string (line 9)",
      "secrets.s.file: must be a string (line 11)",
      'services.web.deploy.placement.constraints[0]: "node.role = x" is not KEY==VALUE or KEY!=VALUE (line 6)',
    ]);
  });

  test("every problem of a file is listed, not only the first", () => {
    const problems = problemsOf(() => readStack([stackFile(svc("    deploy: {replicas: -1, update_config: {delay: x}}\n    stop_grace_period: y\n    replcas: 2\n"))], "s", {}));
    assert.equal(problems.length, 4, problems.join("\n"));
  });
});
