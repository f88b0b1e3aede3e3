// Issue 13 (secrets and configs): a secret with a known random value is delivered to a process
// task as a 0400 file and appears nowhere else: not in any API answer, the events stream, the
// data dir (store, logs, records), process command lines, environments or `ps`.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { request, type ClientRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN, BatonProcess, getJson, waitFor, type PsRow } from "../harness/baton.js";

/** Every file under dir, recursively (sockets and the like skipped). */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** The events stream from now on, as raw text, until stopped. */
function captureEvents(socket: string): { text: () => string; stop: () => void } {
  let text = "";
  const req: ClientRequest = request({ socketPath: socket, path: "/v1/events" }, (res) => res.on("data", (d: Buffer) => (text += d.toString())));
  req.on("error", () => undefined);
  req.end();
  return { text: () => text, stop: () => req.destroy() };
}

const running = (rows: PsRow[]): PsRow[] => rows.filter((r) => r.DesiredState === "running" && r.CurrentState === "running");

describe("secrets and configs: delivery, and the leak search", () => {
  const baton = new BatonProcess();
  const work = mkdtempSync(join(tmpdir(), "baton-secret-"));
  // Random, so finding it anywhere is a leak and not a coincidence.
  const value = `s3cret-${randomBytes(24).toString("hex")}`;
  const configText = `listen=8080\nworkers=${randomBytes(4).toString("hex")}\n`;
  const script = join(work, "reader.mjs");
  let events: ReturnType<typeof captureEvents>;

  before(async () => {
    // The task reads its files and logs only a digest and their modes, then stays up.
    writeFileSync(
      script,
      `import { readFileSync, statSync } from "node:fs";
import { createHash } from "node:crypto";
const s = process.env.BATON_SECRETS_DIR + "/db_password";
const c = process.env.BATON_CONFIGS_DIR + "/app.conf";
const sha = createHash("sha256").update(readFileSync(s)).digest("hex");
console.log("secret sha256=" + sha + " mode=" + (statSync(s).mode & 0o777).toString(8) + " config mode=" + (statSync(c).mode & 0o777).toString(8) + " config=" + JSON.stringify(readFileSync(c, "utf8")));
setInterval(() => undefined, 1 << 30);
`,
    );
    writeFileSync(join(work, "app.conf"), configText);
    await baton.start();
    events = captureEvents(baton.socket);
    await waitFor(() => events.text().includes(": revision"), 5000, "the events stream's head");
  });
  after(async () => {
    events?.stop();
    await baton.destroy();
    rmSync(work, { recursive: true, force: true });
  });

  test("create from stdin, deliver as 0400 file, and never show the value anywhere else", async () => {
    // From standard input, as `printf … | baton secret create db_password -`.
    const created = execFileSync(process.execPath, [BIN, "secret", "create", "db_password", "-"], {
      input: value,
      env: { ...process.env, BATON_HOST: `unix://${baton.socket}` },
    }).toString().trim();
    assert.match(created, /^[a-z0-9]+$/);
    await baton.cliOk("config", "create", "app.conf", join(work, "app.conf"));
    // The name is unique per kind.
    const again = await baton.cli("secret", "create", "db_password", join(work, "app.conf"));
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /secret name "db_password" is already in use/);

    const out = await baton.cliOk("service", "create", "--name", "reader", "--secret", "db_password", "--config", "app.conf", "node", script);
    assert.match(out, /converged/);
    const task = running(await baton.tasks("reader"))[0]!;
    const logs = await waitFor(async () => {
      const l = await baton.cliOk("service", "logs", "reader");
      return l.includes("secret sha256=") && l;
    }, 10_000, "the task's log line");
    const { createHash } = await import("node:crypto");
    const expected = `secret sha256=${createHash("sha256").update(value).digest("hex")} mode=400 config mode=444 config=${JSON.stringify(configText)}`;
    assert.ok(logs.includes(expected), `the task read both files: ${logs}`);

    // The delivered file: in a per-task directory (a tmpfs where there is one), 0400, the value.
    const environ = readFileSync(`/proc/${task.Pid}/environ`, "utf8").split("\0");
    const dir = environ.find((e) => e.startsWith("BATON_SECRETS_DIR="))!.slice("BATON_SECRETS_DIR=".length);
    assert.ok(dir.includes(task.ID), `${dir} is the task's own directory`);
    assert.equal(statSync(join(dir, "db_password")).mode & 0o777, 0o400);
    assert.equal(readFileSync(join(dir, "db_password"), "utf8"), value);

    // The leak search.
    const leaks: string[] = [];
    const look = (where: string, text: string | Buffer): void => {
      if (Buffer.isBuffer(text) ? text.includes(value) : text.includes(value)) leaks.push(where);
    };
    const encoded = Buffer.from(value).toString("base64");
    const lookEncoded = (where: string, text: string): void => {
      look(where, text);
      if (text.includes(encoded)) leaks.push(`${where} (base64)`);
    };
    const svc = (await getJson(baton.socket, "/v1/services/reader")) as { id: string };
    for (const path of ["/v1/services", "/v1/services/reader", `/v1/tasks?service=${svc.id}`, `/v1/tasks/${task.ID}`, "/v1/secrets", "/v1/secrets/db_password", `/v1/secrets/${created}`, "/v1/configs", "/v1/nodes", "/v1/info"]) {
      lookEncoded(`GET ${path}`, JSON.stringify(await getJson(baton.socket, path)));
    }
    const inspect = await baton.cliOk("secret", "inspect", "db_password");
    assert.match(inspect, /"name": "db_password"/);
    assert.doesNotMatch(inspect, /sealed|"data"/);
    lookEncoded("baton secret inspect", inspect);
    lookEncoded("baton secret ls", await baton.cliOk("secret", "ls"));
    lookEncoded("baton service inspect", await baton.cliOk("service", "inspect", "reader"));
    lookEncoded("baton service ps", await baton.cliOk("service", "ps", "reader", "--format", "json"));
    lookEncoded("baton service logs", logs);
    // A config is not secret: inspect shows it.
    const cfg = JSON.parse(await baton.cliOk("config", "inspect", "app.conf")) as { data: string }[];
    assert.equal(Buffer.from(cfg[0]!.data, "base64").toString(), configText);
    lookEncoded("the events stream", events.text());
    assert.match(events.text(), /event: secrets/, `the stream carried the secret's creation (as metadata): ${events.text().slice(0, 500)}`);
    // Every file under the data dir: the SQLite store (and its WAL), logs, task records, keys.
    for (const f of filesUnder(baton.dataDir)) {
      const bytes = readFileSync(f);
      look(f, bytes);
      if (bytes.includes(encoded)) leaks.push(`${f} (base64)`);
    }
    assert.ok(existsSync(join(baton.dataDir, "store.db")), "the store was searched");
    lookEncoded("baton up's output", baton.output);
    for (const [who, pid] of [["baton", baton.pid], ["task", task.Pid!]] as const) {
      look(`${who} /proc/${pid}/cmdline`, readFileSync(`/proc/${pid}/cmdline`));
      look(`${who} /proc/${pid}/environ`, readFileSync(`/proc/${pid}/environ`));
    }
    lookEncoded("ps auxwwe", execFileSync("ps", ["auxwwe"]).toString());
    assert.deepEqual(leaks, [], `the secret's value was found in: ${leaks.join(", ")}`);
  });

  test("rm is refused while a service uses it (409 naming it); rotation rolls the task; files go when the task ends", async () => {
    const refused = await baton.cli("secret", "rm", "db_password");
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /secret "db_password" is in use by service "reader"/);

    const old = running(await baton.tasks("reader"))[0]!;
    const oldDir = readFileSync(`/proc/${old.Pid}/environ`, "utf8").split("\0").find((e) => e.startsWith("BATON_SECRETS_DIR="))!.slice("BATON_SECRETS_DIR=".length);
    // Rotation: a new secret, then the service moves to it under the same file name.
    writeFileSync(join(work, "v2"), "second-value", { mode: 0o600 });
    await baton.cliOk("secret", "create", "db_password_v2", join(work, "v2"));
    await baton.cliOk("service", "update", "--secret-rm", "db_password", "--secret-add", "source=db_password_v2,target=db_password", "reader");
    const fresh = await waitFor(async () => running(await baton.tasks("reader")).find((r) => r.ID !== old.ID), 20_000, "the task replaced after the secret changed");
    const newDir = readFileSync(`/proc/${fresh.Pid}/environ`, "utf8").split("\0").find((e) => e.startsWith("BATON_SECRETS_DIR="))!.slice("BATON_SECRETS_DIR=".length);
    assert.equal(readFileSync(join(newDir, "db_password"), "utf8"), "second-value");
    await waitFor(() => !existsSync(oldDir), 10_000, `the old task's secret directory ${oldDir} removed`);
    // The old secret is free now.
    await baton.cliOk("secret", "rm", "db_password");
    const gone = await baton.cli("secret", "inspect", "db_password");
    assert.match(gone.stderr, /secret "db_password" not found/);
    await baton.cliOk("service", "rm", "reader");
    await waitFor(() => !existsSync(newDir), 10_000, "the task's secret directory removed after service rm");
  });

  test("bad input: a clear error naming the field, nothing created", async () => {
    const missing = await baton.cli("service", "create", "--name", "bad", "--secret", "nope", "--config", "source=app.conf,target=../escape", "node", script);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /secrets\[0\]\.source: secret "nope" not found/);
    assert.match(missing.stderr, /configs\[0\]\.target: "\.\.\/escape" must be a plain path/);
    const mode = await baton.cli("service", "create", "--name", "bad", "--secret", "source=db_password_v2,mode=999", "node", script);
    assert.match(mode.stderr, /mode "999" is not an octal mode/);
    const big = join(work, "big");
    writeFileSync(big, Buffer.alloc(500 * 1024 + 1, 1));
    const tooBig = await baton.cli("secret", "create", "big", big);
    assert.match(tooBig.stderr, /limit is 512000/);
    const bad64 = (await new Promise<{ status: number; body: string }>((res) => {
      const req = request({ socketPath: baton.socket, path: "/v1/secrets", method: "POST", headers: { "content-type": "application/json" } }, (r) => {
        let b = "";
        r.on("data", (d: Buffer) => (b += d.toString()));
        r.on("end", () => res({ status: r.statusCode!, body: b }));
      });
      req.end(JSON.stringify({ name: "x", data: "not base64!" }));
    }));
    assert.equal(bad64.status, 400);
    assert.match(bad64.body, /"path":\["data"\]/);
    const names = ((await getJson(baton.socket, "/v1/secrets")) as { name: string }[]).map((s) => s.name);
    assert.deepEqual(names, ["db_password_v2"]);
    assert.equal(((await getJson(baton.socket, "/v1/services")) as unknown[]).length, 0);
  });
});
