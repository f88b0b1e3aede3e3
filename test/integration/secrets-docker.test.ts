// Issue 13 (secrets and configs) on the docker driver: the per-task files are bind-mounted
// read-only into a real container of the tests' busybox image, at /run/secrets/NAME (configs at
// /NAME, or an absolute target), with their modes; the value is in no container env or inspect;
// the host files go when the task ends. Without an engine these tests skip with the reason
// printed; under CI=true they fail.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type Docker from "dockerode";
import { BatonProcess, waitFor, type PsRow } from "../harness/baton.js";
import { dockerOrSkip, ensureBusyboxImage } from "../harness/images.js";
import { NODE_LABEL, SERVICE_LABEL } from "../../src/agent/drivers/labels.js";

const engine = await dockerOrSkip();
const skip = "skip" in engine ? { skip: engine.skip } : {};
const running = (rows: PsRow[]): PsRow[] => rows.filter((r) => r.DesiredState === "running" && r.CurrentState === "running");

/** Runs a command in a container; its output (stdout and stderr, demultiplexed) and exit code. */
async function execIn(container: Docker.Container, cmd: string[]): Promise<{ out: string; code: number }> {
  const exec = await container.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  const sink = { write: (b: Buffer) => chunks.push(Buffer.from(b)) } as unknown as NodeJS.WritableStream;
  container.modem.demuxStream(stream, sink, sink);
  await new Promise<void>((res, rej) => {
    stream.on("end", () => res());
    stream.on("error", rej);
  });
  const { ExitCode } = await exec.inspect();
  return { out: Buffer.concat(chunks).toString(), code: ExitCode ?? -1 };
}

describe("secrets and configs on the docker driver", skip, () => {
  const docker = "docker" in engine ? engine.docker : (undefined as unknown as Docker);
  const baton = new BatonProcess();
  const work = mkdtempSync(join(tmpdir(), "baton-secret-docker-"));
  // Random, so finding it anywhere is a leak and not a coincidence.
  const value = `s3cret-${randomBytes(16).toString("hex")}`;
  const configText = `workers=${randomBytes(4).toString("hex")}\n`;
  let image = "";
  let nodeId = "";
  const containers = async (service: string): Promise<Docker.ContainerInfo[]> =>
    docker.listContainers({ all: true, filters: { label: [`${NODE_LABEL}=${nodeId}`, `${SERVICE_LABEL}=${service}`] } });
  const runningContainer = async (service: string): Promise<Docker.Container> => {
    const c = await waitFor(async () => (await containers(service)).find((x) => x.State === "running"), 20_000, `a running container of ${service}`);
    return docker.getContainer(c.Id);
  };

  before(async () => {
    image = await ensureBusyboxImage(docker);
    writeFileSync(join(work, "pw"), value, { mode: 0o600 });
    writeFileSync(join(work, "app.conf"), configText);
    await baton.start();
    nodeId = (await baton.info()).nodeId;
  });
  after(async () => {
    await baton.destroy();
    for (const service of ["sec", "st_db"]) for (const c of await containers(service)) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  let sources: string[] = [];

  test("cat /run/secrets/NAME in the container: the value, its mode, read-only; nowhere in the container's env or inspect", async () => {
    await baton.cliOk("secret", "create", "db_password", join(work, "pw"));
    await baton.cliOk("config", "create", "app.conf", join(work, "app.conf"));
    await baton.cliOk(
      "service", "create", "--name", "sec", "--stop-grace-period", "1s",
      "--secret", "db_password",
      "--secret", "source=db_password,target=/etc/app/password,mode=0440",
      "--config", "app.conf",
      image, "sleep", "3600",
    );
    await waitFor(async () => running(await baton.tasks("sec")).length === 1, 20_000, "the sec task running");
    const c = await runningContainer("sec");

    assert.deepEqual(await execIn(c, ["cat", "/run/secrets/db_password"]), { out: value, code: 0 });
    assert.deepEqual(await execIn(c, ["cat", "/etc/app/password"]), { out: value, code: 0 });
    assert.deepEqual(await execIn(c, ["cat", "/app.conf"]), { out: configText, code: 0 });
    const modes = (await execIn(c, ["ls", "-l", "/run/secrets/db_password", "/etc/app/password", "/app.conf"])).out;
    assert.match(modes, /^-r--------\s.*\/run\/secrets\/db_password$/m);
    assert.match(modes, /^-r--r-----\s.*\/etc\/app\/password$/m);
    assert.match(modes, /^-r--r--r--\s.*\/app\.conf$/m);
    // Bind-mounted read-only: even root in the container cannot change it.
    const write = await execIn(c, ["sh", "-c", "echo changed > /run/secrets/db_password"]);
    assert.notEqual(write.code, 0);
    assert.match(write.out, /Read-only file system/i);

    const info = await c.inspect();
    const text = JSON.stringify(info);
    assert.equal(text.includes(value), false, "docker inspect shows no secret value");
    assert.equal(text.includes(Buffer.from(value).toString("base64")), false, "docker inspect shows no base64 value");
    assert.equal((await execIn(c, ["env"])).out.includes(value), false, "the container's env has no secret value");
    const binds = info.Mounts.filter((m) => m.Type === "bind");
    assert.deepEqual(binds.map((m) => [m.Destination, m.RW]).sort(), [["/app.conf", false], ["/etc/app/password", false], ["/run/secrets/db_password", false]]);
    sources = binds.map((m) => m.Source);
    for (const s of sources) assert.ok(existsSync(s), `${s} on the host while the task runs`);
  });

  test("the task's host files are removed when it ends: a killed container's task is replaced with fresh files; service rm removes the rest", async () => {
    const first = await runningContainer("sec");
    const firstSources = sources;
    await first.kill();
    // The replacement gets its own files; the ended task's are gone.
    const second = await waitFor(async () => {
      const list = (await containers("sec")).filter((x) => x.State === "running" && !firstSources.includes(x.Mounts[0]?.Source ?? ""));
      return list.find((x) => x.Id !== (first.id as string));
    }, 30_000, "a replacement container");
    await waitFor(() => firstSources.every((s) => !existsSync(dirname(s))), 10_000, () => `the killed task's files removed: ${firstSources.filter((s) => existsSync(s)).join(", ")}`);
    const c = docker.getContainer(second.Id);
    assert.deepEqual(await execIn(c, ["cat", "/run/secrets/db_password"]), { out: value, code: 0 });
    const secondSources = (await c.inspect()).Mounts.filter((m) => m.Type === "bind").map((m) => m.Source);
    assert.equal(secondSources.length, 3);

    await baton.cliOk("service", "rm", "sec");
    await waitFor(async () => (await containers("sec")).length === 0, 20_000, "the sec containers removed");
    await waitFor(() => secondSources.every((s) => !existsSync(s)), 10_000, "the last task's files removed");
  });

  test("a stack's image service: the external secret at /run/secrets/<key>, the stack's own config at its target; stack rm removes the stack's config only", async () => {
    const stackFile = join(work, "stack.yml");
    writeFileSync(
      stackFile,
      `services:
  db:
    image: ${image}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    secrets: [db_password]
    configs: [{source: conf, target: /etc/app.conf, mode: 0440}]
secrets:
  db_password: {external: true}
configs:
  conf: {file: ./app.conf}
`,
    );
    await baton.cliOk("stack", "deploy", "-c", stackFile, "--detach=false", "st");
    const c = await runningContainer("st_db");
    assert.deepEqual(await execIn(c, ["cat", "/run/secrets/db_password"]), { out: value, code: 0 });
    assert.deepEqual(await execIn(c, ["cat", "/etc/app.conf"]), { out: configText, code: 0 });
    assert.match((await execIn(c, ["ls", "-l", "/etc/app.conf"])).out, /^-r--r-----\s/);
    const out = await baton.cliOk("stack", "rm", "st");
    assert.match(out, /Removing service st_db\nRemoving config st_conf\n/);
    assert.doesNotMatch(out, /secret/);
    await waitFor(async () => (await containers("st_db")).length === 0, 20_000, "the st_db container removed");
    assert.match(await baton.cliOk("secret", "ls"), /db_password/);
  });
});
