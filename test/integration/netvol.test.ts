// Issues 12 and 13: containers find services by name through the mesh (the container range and
// its DNS responder), discovery scoped by networks, engine networks made and removed with their
// containers, volumes that outlive tasks on both drivers, read-only binds and tmpfs. Needs a
// Docker Engine and root (the container range route, DNS on port 53): without them it skips
// with the reason printed; under CI=true it fails.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import type Docker from "dockerode";
import { BatonProcess, httpGet, waitFor, type PsRow } from "../harness/baton.js";
import { dockerOrSkip, ensureBusyboxImage } from "../harness/images.js";
import { NODE_LABEL, SERVICE_LABEL } from "../../src/agent/drivers/labels.js";

const engine = await dockerOrSkip();
const rootless = process.getuid?.() !== 0 ? "not root: the container range route and DNS on port 53 need it" : undefined;
if (rootless && process.env.CI === "true") throw new Error(`CI=true and ${rootless}`);
if (rootless) process.stderr.write(`skipping netvol tests: ${rootless}\n`);
const skip = "skip" in engine ? { skip: engine.skip } : rootless ? { skip: rootless } : {};
const running = (rows: PsRow[]): PsRow[] => rows.filter((r) => r.DesiredState === "running" && r.CurrentState === "running");
/** Unique per run: engine networks and volumes are host-wide. */
const tag = Math.random().toString(36).slice(2, 7);

describe("networks, discovery from containers, volumes and mounts", skip, () => {
  const docker = "docker" in engine ? engine.docker : (undefined as unknown as Docker);
  const baton = new BatonProcess(undefined, ["--dns-addr", "127.77.0.1:0"]);
  const bindDir = mkdtempSync(join(tmpdir(), "baton-nv-bind-"));
  const net = `nv-${tag}`;
  const vol = `nv-vol-${tag}`;
  let image = "";
  let nodeId = "";
  const containersOf = async (service: string): Promise<Docker.ContainerInfo[]> =>
    docker.listContainers({ filters: { label: [`${NODE_LABEL}=${nodeId}`, `${SERVICE_LABEL}=${service}`], status: ["running"] } });
  /** Runs a command in the service's running container; its output (stdout and stderr). */
  const execIn = async (service: string, cmd: string[]): Promise<string> => {
    const [c] = await containersOf(service);
    assert.ok(c, `a running container of ${service}`);
    const e = await docker.getContainer(c.Id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
    const stream = await e.start({ hijack: true, stdin: false });
    let out = "";
    const sink = new PassThrough();
    sink.on("data", (b: Buffer) => (out += b.toString()));
    docker.modem.demuxStream(stream, sink, sink);
    await new Promise((r) => stream.once("end", r));
    return out;
  };

  before(async () => {
    image = await ensureBusyboxImage(docker);
    await baton.start();
    nodeId = (await baton.info()).nodeId;
  });
  after(async () => {
    await baton.destroy();
    const left = await docker.listContainers({ all: true, filters: { label: [`${NODE_LABEL}=${nodeId}`] } });
    for (const c of left) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    await docker.getVolume(vol).remove().catch(() => undefined);
    await docker.getNetwork(`baton-${net}`).remove().catch(() => undefined);
    rmSync(bindDir, { recursive: true, force: true });
  });

  test("a container resolves a service on its network by name and gets an answer through it; others stay out of sight", async () => {
    await baton.cliOk("network", "create", net);
    await baton.cliOk("service", "create", "-d", "--name", `web-${tag}`, "--network", net, "-p", "80", "--stop-grace-period", "1s", image, "httpd", "-f", "-p", "80", "-h", "/www");
    await baton.cliOk("service", "create", "-d", "--name", `rr-${tag}`, "--network", net, "--endpoint-mode", "dnsrr", "--replicas", "2", "--stop-grace-period", "1s", image, "sleep", "1000");
    await baton.cliOk("service", "create", "-d", "--name", `outside-${tag}`, "-p", "80", "--stop-grace-period", "1s", image, "httpd", "-f", "-p", "80", "-h", "/www");
    await waitFor(async () => running(await baton.tasks(`web-${tag}`)).some((r) => (r as PsRow & { Ready: boolean }).Ready), 20_000, "web ready");
    await baton.cliOk("service", "create", "-d", "--name", `client-${tag}`, "--network", net, "--stop-grace-period", "1s", image, "sleep", "1000");
    // Running for Baton, not only for the engine: its address is then known to the DNS responder.
    await waitFor(async () => running(await baton.tasks(`client-${tag}`)).length === 1 && (await containersOf(`client-${tag}`)).length === 1, 20_000, "the client task running");

    const lookup = await execIn(`client-${tag}`, ["nslookup", `web-${tag}`]);
    assert.match(lookup, /Address: 198\.18\.\d+\.\d+/, lookup);
    const answer = await waitFor(async () => {
      const out = await execIn(`client-${tag}`, ["sh", "-c", `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 web-${tag} 80`]);
      return out.includes("hello from busybox") ? out : undefined;
    }, 10_000, "an HTTP answer from web through its name");
    assert.match(answer, /200 OK/);
    // The env vars name the same reachable address, and only services of the client's networks.
    const env = await execIn(`client-${tag}`, ["env"]);
    const prefix = `WEB_${tag.toUpperCase()}`;
    assert.match(env, new RegExp(`${prefix}_SERVICE_HOST=198\\.18\\.`));
    assert.doesNotMatch(env, /OUTSIDE_/);
    assert.match(env, /BATON_DNS=198\.18\.0\.\d+:53/);
    const hidden = await execIn(`client-${tag}`, ["nslookup", `outside-${tag}`]);
    assert.doesNotMatch(hidden, /Address: 198\.18\.(?!0\.)/, `outside-${tag} is on another network: ${hidden}`);
    // Knowing the other network's service address is not enough: the mesh refuses the connection
    // (outside is ready: from the host its twin answers).
    await waitFor(async () => running(await baton.tasks(`outside-${tag}`)).some((r) => (r as PsRow & { Ready: boolean }).Ready), 20_000, "outside ready");
    const outsideVip = (JSON.parse(await baton.cliOk("service", "inspect", `outside-${tag}`)) as { vip: string }[])[0]!.vip;
    const twin = outsideVip.replace(/^127\.77\./, "198.18.");
    const refused = await execIn(`client-${tag}`, ["sh", "-c", `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${twin} 80; echo rc=$?`]);
    assert.doesNotMatch(refused, /hello from busybox/, `the client reached ${twin}: ${refused}`);
    assert.equal(await httpGet(80, 3000, twin), "hello from busybox\n", `${twin}:80 answers the host`);
    // dnsrr: no service address; the engine's DNS on the network answers the name with the containers.
    const rr = await waitFor(async () => {
      const out = await execIn(`client-${tag}`, ["nslookup", `rr-${tag}`]);
      return (out.match(/Address: \d+\.\d+\.\d+\.\d+/g) ?? []).filter((a) => !a.includes("127.0.0.11")).length === 2 ? out : undefined;
    }, 15_000, "two container addresses for the dnsrr service");
    assert.doesNotMatch(rr, /198\.18\./);
    assert.doesNotMatch(env, /RR_/);
    // The engine network exists for the network's containers, with Baton's label.
    const info = (await docker.getNetwork(`baton-${net}`).inspect()) as { Labels: Record<string, string> };
    assert.ok(info.Labels["baton.network.id"]);
  });

  test("after kill -9 and restart of baton, the re-adopted containers still resolve and reach the service", async () => {
    const before = (await containersOf(`client-${tag}`)).map((c) => c.Id);
    await baton.kill("SIGKILL");
    await baton.start();
    await waitFor(async () => running(await baton.tasks(`web-${tag}`)).some((r) => (r as PsRow & { Ready: boolean }).Ready), 20_000, "web ready again");
    assert.deepEqual((await containersOf(`client-${tag}`)).map((c) => c.Id), before, "the same client container");
    const answer = await waitFor(async () => {
      const out = await execIn(`client-${tag}`, ["sh", "-c", `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 web-${tag} 80`]);
      return out.includes("hello from busybox") ? out : undefined;
    }, 15_000, "an HTTP answer from web through its name after the restart");
    assert.match(answer, /200 OK/);
    assert.doesNotMatch(await execIn(`client-${tag}`, ["nslookup", `outside-${tag}`]), /Address: 198\.18\.(?!0\.)/);
  });

  test("network rm is refused while a service uses it; an internal-only service cannot publish", async () => {
    const rm = await baton.cli("network", "rm", net);
    assert.equal(rm.code, 1);
    assert.match(rm.stderr, /in use by services client-.*, web-/);
    await baton.cliOk("network", "create", "--internal", `${net}-int`);
    const pub = await baton.cli("service", "create", "-d", "--name", `pub-${tag}`, "--network", `${net}-int`, "-p", "18791:80", image, "sleep", "5");
    assert.equal(pub.code, 1);
    assert.match(pub.stderr, /publish\[0\]\.published: the service is only on internal networks/);
    await baton.cliOk("network", "rm", `${net}-int`);
  });

  test("the engine network goes with the last container on it", async () => {
    await baton.cliOk("service", "rm", `web-${tag}`, `client-${tag}`, `outside-${tag}`, `rr-${tag}`);
    await waitFor(async () => !(await docker.listNetworks({ filters: { name: [`baton-${net}`] } })).some((n) => n.Name === `baton-${net}`), 20_000, "the engine network removed");
    await baton.cliOk("network", "rm", net);
  });

  test("containers: volume data survives a task kill; a read-only bind refuses writes; tmpfs is a tmpfs", async () => {
    const script = "date >> /data/runs; if touch /ro/x 2>/dev/null; then echo RO-WRITABLE; else echo RO-REFUSED; fi; grep ' /scratch ' /proc/mounts; exec sleep 1000";
    await baton.cliOk("service", "create", "-d", "--name", `vol-${tag}`, "--stop-grace-period", "1s",
      "--mount", `type=volume,source=${vol},target=/data`, "--mount", `type=bind,source=${bindDir},target=/ro,readonly`, "--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m",
      image, "sh", "-c", script);
    await waitFor(async () => (await containersOf(`vol-${tag}`)).length === 1, 20_000, "the volume container running");
    const logs = await waitFor(async () => ((await baton.cliOk("service", "logs", "--raw", `vol-${tag}`)).includes("/scratch") ? baton.cliOk("service", "logs", "--raw", `vol-${tag}`) : undefined), 10_000, "the container's report in its logs");
    assert.match(logs, /RO-REFUSED/);
    assert.doesNotMatch(logs, /RO-WRITABLE/);
    assert.match(logs, /tmpfs \/scratch tmpfs .*size=1024k/);
    assert.equal(existsSync(join(bindDir, "x")), false);
    const [first] = await containersOf(`vol-${tag}`);
    await docker.getContainer(first!.Id).kill();
    await waitFor(async () => (await containersOf(`vol-${tag}`)).some((c) => c.Id !== first!.Id), 20_000, "a replacement container");
    const runs = await waitFor(async () => {
      const out = await execIn(`vol-${tag}`, ["cat", "/data/runs"]);
      return out.trim().split("\n").length === 2 ? out : undefined;
    }, 10_000, "two runs recorded in the volume");
    assert.equal(runs.trim().split("\n").length, 2);
    assert.match(await baton.cliOk("volume", "ls"), new RegExp(vol));
    const rm = await baton.cli("volume", "rm", vol);
    assert.match(rm.stderr, /in use by service vol-/);
    await baton.cliOk("service", "rm", `vol-${tag}`);
  });

  test("process driver: a volume is a directory per node whose data survives kill -9 of the task", async () => {
    await baton.cliOk("service", "create", "-d", "--name", `pvol-${tag}`, "--mount", `type=volume,source=p${vol},target=/data`,
      "sh", "-c", 'echo "run $BATON_MOUNT_DATA" >> "$BATON_VOLUME_P' + `${vol.toUpperCase().replace(/-/g, "_")}/runs"; exec sleep 1000`);
    const path = join(baton.dataDir, "agent", "volumes", `p${vol}`, "runs");
    await waitFor(() => existsSync(path), 10_000, `${path} written`);
    const [task] = running(await baton.tasks(`pvol-${tag}`));
    assert.ok(task?.Pid, "the task's pid");
    process.kill(task.Pid, "SIGKILL");
    await waitFor(() => readFileSync(path, "utf8").trim().split("\n").length === 2, 10_000, "a second run appended by the replacement task");
    assert.match(readFileSync(path, "utf8"), new RegExp(`run ${join(baton.dataDir, "agent", "volumes", `p${vol}`)}`));
    await baton.cliOk("service", "rm", `pvol-${tag}`);
  });

  test("anonymous volumes (a volume mount without a source) live as long as their task, on both drivers", async () => {
    await baton.cliOk("service", "create", "-d", "--name", `anon-${tag}`, "--stop-grace-period", "1s", "--mount", "type=volume,target=/cache", image, "sh", "-c", "date > /cache/x; exec sleep 1000");
    await baton.cliOk("service", "create", "-d", "--name", `panon-${tag}`, "--mount", "type=volume,target=/cache", "sh", "-c", 'date > "$BATON_MOUNT_CACHE/x"; exec sleep 1000');
    const [c] = await waitFor(async () => { const l = await containersOf(`anon-${tag}`); return l.length ? l : undefined; }, 20_000, "the container running");
    const mount = (await docker.getContainer(c!.Id).inspect()).Mounts.find((m) => m.Destination === "/cache");
    assert.equal(mount?.Type, "volume");
    assert.ok(mount?.Name, "an engine-made (anonymous) volume");
    const [task] = await waitFor(async () => { const r = running(await baton.tasks(`panon-${tag}`)); return r.length ? r : undefined; }, 10_000, "the process task running");
    const dir = join(baton.dataDir, "agent", "anonymous-volumes", task!.ID);
    await waitFor(() => existsSync(join(dir, "CACHE", "x")), 10_000, "the process task's anonymous volume written");
    await baton.cliOk("service", "rm", `anon-${tag}`, `panon-${tag}`);
    await waitFor(async () => (await docker.listVolumes()).Volumes.every((v) => v.Name !== mount!.Name), 20_000, "the anonymous volume removed with its container");
    await waitFor(() => !existsSync(dir), 10_000, "the process task's anonymous volume removed with it");
  });
});
