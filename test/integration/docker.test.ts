// Issue 12, the docker driver: containers of the tests' busybox image (built FROM scratch, no
// registry) run through a real `baton up` against the local Docker Engine. Ports 18700-18800.
// Without an engine these tests skip with the reason printed; under CI=true they fail.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type Docker from "dockerode";
import { BatonProcess, getJson, httpGet, waitFor, type PsRow } from "../harness/baton.js";
import { dockerOrSkip, ensureBusyboxImage, ensureHealthcheckImage } from "../harness/images.js";
import { NODE_LABEL, SERVICE_LABEL, TASK_LABEL } from "../../src/agent/drivers/labels.js";

const engine = await dockerOrSkip();
const skip = "skip" in engine ? { skip: engine.skip } : {};
const running = (rows: PsRow[]): PsRow[] => rows.filter((r) => r.DesiredState === "running" && r.CurrentState === "running");
const ready = (rows: PsRow[]): PsRow[] => running(rows).filter((r) => (r as PsRow & { Ready: boolean }).Ready);

describe("docker driver through baton up", skip, () => {
  const docker = "docker" in engine ? engine.docker : (undefined as unknown as Docker);
  const baton = new BatonProcess(undefined, ["--dns-addr", "127.77.0.1:0"]);
  let image = "";
  let nodeId = "";
  /** This node's containers, by label, as the engine sees them. */
  const containers = async (service?: string): Promise<Docker.ContainerInfo[]> =>
    docker.listContainers({ all: true, filters: { label: [`${NODE_LABEL}=${nodeId}`, ...(service ? [`${SERVICE_LABEL}=${service}`] : [])] } });

  before(async () => {
    image = await ensureBusyboxImage(docker);
    await baton.start();
    nodeId = (await baton.info()).nodeId;
  });
  after(async () => {
    await baton.destroy();
    for (const c of await containers()) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
  });

  test("the node offers the docker driver; replicas of an image converge and serve through a published port", async () => {
    const nodes = await baton.cliOk("node", "ls");
    assert.match(nodes, /process,docker/);
    // The image argument is recognised by the rule (a tag, not an executable): no --driver needed.
    await baton.cliOk("service", "create", "--name", "web", "--replicas", "3", "-p", "18700:80", "--stop-grace-period", "1s", image, "httpd", "-f", "-p", "80", "-h", "/www");
    await waitFor(async () => ready(await baton.tasks("web")).length === 3, 20_000, "3 ready web tasks");
    assert.equal((await containers("web")).filter((c) => c.State === "running").length, 3, "3 containers running");
    for (let i = 0; i < 6; i++) assert.equal(await httpGet(18700), "hello from busybox\n");
  });

  test("docker kill of a container → its task fails (exit code 137) and is replaced", async () => {
    const [victim] = await containers("web");
    const victimTask = victim!.Labels[TASK_LABEL]!;
    await docker.getContainer(victim!.Id).kill();
    await waitFor(async () => {
      const rows = await baton.tasks("web");
      return ready(rows).length === 3 && rows.some((r) => r.ID.startsWith(victimTask.slice(0, 12)) && /137/.test(r.Error));
    }, 20_000, "the killed task failed with exit code 137 and 3 tasks ready again");
    assert.equal(await httpGet(18700), "hello from busybox\n");
  });

  test("baton kill -9 and restart: the same containers are re-adopted, no duplicates, a stray is removed", async () => {
    const before = (await containers("web")).filter((c) => c.State === "running").map((c) => c.Id).sort();
    assert.equal(before.length, 3);
    // A container labelled for this node that no task record holds: removed at the agent's start.
    const stray = await docker.createContainer({ Image: image, Cmd: ["sleep", "60"], Labels: { [NODE_LABEL]: nodeId, [TASK_LABEL]: "not-a-baton-task", [SERVICE_LABEL]: "ghost" } });
    await stray.start();
    await baton.kill("SIGKILL");
    await baton.start();
    await waitFor(async () => ready(await baton.tasks("web")).length === 3, 15_000, "3 ready web tasks after the restart");
    const after = (await containers("web")).map((c) => c.Id).sort();
    assert.deepEqual(after, before, "the same containers, and no more");
    const rows = await baton.tasks("web");
    assert.ok(running(rows).every((r) => r.Message === "adopted after agent restart" || /healthy|accepting|running/.test(r.Message)), rows.map((r) => r.Message).join(", "));
    await waitFor(async () => (await containers("ghost")).length === 0, 5000, "the stray container removed");
    assert.equal(await httpGet(18700), "hello from busybox\n");
  });

  test("a missing image → the task is rejected with a clear error within seconds", async () => {
    const t0 = Date.now();
    await baton.cliOk("service", "create", "--name", "ghostimg", "-d", "--restart-max-attempts", "1", "baton-test/not-there:1", "sleep", "5");
    const row = await waitFor(async () => (await baton.tasks("ghostimg")).find((r) => r.Error !== ""), 10_000, "a task error for the missing image");
    assert.match(row.Error, /image not found locally: baton-test\/not-there:1/);
    assert.ok(Date.now() - t0 < 8000, `reported after ${Date.now() - t0} ms`);
    assert.match(row.CurrentState, /rejected/i);
  });

  test("an exec health check runs inside the container (the file exists only there)", async () => {
    await baton.cliOk("service", "create", "--name", "checked", "-d", "--stop-grace-period", "1s", "--health-cmd", "test -f /www/index.html", "--health-interval", "200ms", "--health-timeout", "2s", "--image", image, "httpd", "-f", "-p", "80", "-h", "/www");
    await waitFor(async () => ready(await baton.tasks("checked")).length === 1, 15_000, "the checked task healthy (ready)");
    await baton.cliOk("service", "create", "--name", "sick", "-d", "--stop-grace-period", "1s", "--restart-max-attempts", "1", "--health-cmd", "test -f /no/such/file", "--health-interval", "200ms", "--health-retries", "2", "--image", image, "sleep", "60");
    const failed = await waitFor(async () => (await baton.tasks("sick")).find((r) => r.Error !== ""), 15_000, "the sick task failed its health check");
    assert.match(failed.Error, /unhealthy/);
  });

  test("the image's HEALTHCHECK runs inside the container, not in the engine; --no-healthcheck and a service's own check replace it", async () => {
    const healthImage = await ensureHealthcheckImage(docker);
    const health = async (service: string): Promise<{ id: string; state: string; health?: string; err?: string; containerId?: string }[]> =>
      ((await getJson(baton.socket, `/v1/tasks?service=${service}`)) as { id: string; status: { state: string; health?: string; err?: string; containerId?: string } }[]).map((t) => ({ id: t.id, ...t.status }));
    // Healthy once the file exists (only inside the container): the image's check ran there.
    await baton.cliOk("service", "create", "--name", "imgcheck", "-d", "--stop-grace-period", "1s", healthImage, "sh", "-c", "touch /tmp/healthy; exec sleep 60");
    const healthy = await waitFor(async () => (await health("imgcheck")).find((t) => t.state === "running" && t.health === "healthy"), 15_000, "imgcheck healthy through the image's HEALTHCHECK");
    const info = await docker.getContainer(healthy.containerId!).inspect();
    assert.deepEqual(info.Config.Healthcheck?.Test, ["NONE"], "the engine does not run the check as well");
    // The file never exists: unhealthy, the task fails and is replaced.
    await baton.cliOk("service", "create", "--name", "imgsick", "-d", "--stop-grace-period", "1s", "--restart-max-attempts", "1", healthImage, "sleep", "60");
    const sick = await waitFor(async () => (await health("imgsick")).find((t) => t.state === "failed"), 15_000, "imgsick failed its image's HEALTHCHECK");
    assert.match(sick.err ?? "", /unhealthy/);
    // --no-healthcheck: the same failing check is not run; the service's own check wins over the image's.
    await baton.cliOk("service", "create", "--name", "nocheck", "-d", "--stop-grace-period", "1s", "--no-healthcheck", healthImage, "sleep", "60");
    await baton.cliOk("service", "create", "--name", "owncheck", "-d", "--stop-grace-period", "1s", "--health-cmd", "true", "--health-interval", "200ms", healthImage, "sleep", "60");
    await waitFor(async () => (await health("owncheck")).some((t) => t.state === "running" && t.health === "healthy"), 15_000, "owncheck healthy through its own check");
    const nocheck = await waitFor(async () => (await health("nocheck")).find((t) => t.state === "running"), 15_000, "nocheck running");
    // Two failed checks at 200 ms would have made it unhealthy by now (see HEALTHCHECK_IMAGE).
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual((await health("nocheck")).map((t) => [t.id, t.state, t.health]), [[nocheck.id, "running", undefined]]);
    const bad = await baton.cli("service", "create", "--name", "both", "--no-healthcheck", "--health-cmd", "true", healthImage);
    assert.match(bad.stderr, /noHealthcheck: conflicts with healthcheck/);
    await baton.cliOk("service", "rm", "imgcheck", "imgsick", "nocheck", "owncheck");
  });

  test("service ps shows the container id (docker's 12 characters) and the exit code", async () => {
    const rows = running(await baton.tasks("web"));
    const ids = (await containers("web")).filter((c) => c.State === "running").map((c) => c.Id).sort();
    assert.deepEqual(rows.map((r) => r.ContainerId).sort(), ids);
    const table = await baton.cliOk("service", "ps", "web");
    assert.match(table, /CONTAINER\/PID/);
    for (const id of ids) assert.ok(table.includes(id.slice(0, 12)) && !table.includes(id), `${id.slice(0, 12)} in the table, not the full id`);
    const killed = (await baton.tasks("web")).find((r) => r.CurrentState === "failed");
    assert.equal(killed?.ExitCode, 137, "the task docker killed earlier: exit code 137");
  });

  test("service logs show a container's output", async () => {
    await baton.cliOk("service", "create", "--name", "talker", "-d", "--stop-grace-period", "1s", "--driver", "docker", image, "sh", "-c", "echo hello-from-container; echo to-stderr >&2; exec sleep 60");
    const logs = await waitFor(async () => {
      const out = await baton.cliOk("service", "logs", "talker");
      return /hello-from-container/.test(out) && /to-stderr/.test(out) ? out : undefined;
    }, 10_000, "the container's lines in service logs");
    assert.match(logs, /talker\.1.*hello-from-container/);
  });
});
