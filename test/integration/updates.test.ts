// Updates issue (#9): rolling updates, rollback and failure actions against a real `baton up`,
// under bounded load to 127.0.0.1 through the mesh.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { BatonProcess, ROOT, getJson, waitFor, type PsRow } from "../harness/baton.js";
import { runLoad } from "../harness/load.js";

const APP = join(ROOT, "test", "fixtures", "mesh-app.js");
const running = (rows: PsRow[]): PsRow[] => rows.filter((r) => r.DesiredState === "running" && r.CurrentState === "running");
const readyCount = async (b: BatonProcess, svc: string): Promise<number> => running(await b.tasks(svc)).filter((r) => (r as PsRow & { Ready: boolean }).Ready).length;
/** Starts a load, runs `during` once it is flowing, and returns the load's result. */
async function underLoad(port: number, durationMs: number, during: () => Promise<void>) {
  let done!: () => void;
  const stop = new Promise<void>((r) => (done = r));
  const load = runLoad({ port, durationMs, concurrency: 4, stop });
  await new Promise((r) => setTimeout(r, 300));
  try {
    await during();
  } finally {
    await new Promise((r) => setTimeout(r, 300));
    done();
  }
  return load;
}

describe("rolling updates and rollback", () => {
  const baton = new BatonProcess(undefined, ["--dns-addr", "127.77.0.1:0"]);
  before(() => baton.start());
  after(() => baton.destroy());

  test("4 replicas: rolling update then rollback under load, 0 failed requests; the version changes both ways", async () => {
    await baton.cliOk("service", "create", "--name", "web", "--replicas", "4", "-p", "18400:80/http", "-e", "VERSION=1", "--update-monitor", "500ms", "--rollback-monitor", "500ms", "node", APP);
    await waitFor(() => readyCount(baton, "web").then((n) => n === 4), 10_000, "4 ready");
    let out = "";
    const up = await underLoad(18400, 60_000, async () => {
      out = await baton.cliOk("service", "update", "--env-add", "VERSION=2", "--update-parallelism", "2", "web");
    });
    assert.match(out, /verify: Service web updated and converged/);
    assert.equal(up.failed, 0, up.errors.join("; "));
    assert.ok(up.versions.has("v1") && up.versions.has("v2"), `both versions answered during the update: ${[...up.versions.keys()]}`);
    assert.equal(up.lastVersion, "v2");
    const [svc] = JSON.parse(await baton.cliOk("service", "inspect", "web")) as [{ specVersion: number; updateStatus: { state: string } }];
    assert.equal(svc.updateStatus.state, "completed");
    const back = await underLoad(18400, 60_000, async () => {
      out = await baton.cliOk("service", "rollback", "web");
    });
    assert.match(out, /rolled back and converged/);
    assert.equal(back.failed, 0, back.errors.join("; "));
    assert.equal(back.lastVersion, "v1");
    const after1 = await runLoad({ port: 18400, durationMs: 500 });
    assert.deepEqual([...after1.versions.keys()], ["v1"]);
  });

  test("1 replica with the defaults: an update under load fails no request", async () => {
    await baton.cliOk("service", "create", "--name", "one", "-p", "18401:80/http", "-e", "VERSION=1", "node", APP);
    await waitFor(() => readyCount(baton, "one").then((n) => n === 1), 10_000, "ready");
    const load = await underLoad(18401, 60_000, async () => {
      await baton.cliOk("service", "update", "--env-add", "VERSION=2", "one");
    });
    assert.equal(load.failed, 0, load.errors.join("; "));
    assert.equal(load.lastVersion, "v2");
    await baton.cliOk("service", "rm", "one");
  });

  test("blue-green: all new tasks ready, traffic switched at once, never a mix of versions after the switch; old tasks drained", async () => {
    let out = "";
    const load = await underLoad(18400, 60_000, async () => {
      out = await baton.cliOk("service", "update", "--env-add", "VERSION=bg", "--update-strategy", "blue-green", "--update-monitor", "500ms", "web");
    });
    assert.match(out, /updated and converged/);
    assert.equal(load.failed, 0, load.errors.join("; "));
    const firstNew = load.answers.filter((a) => a.version === "vbg").sort((a, b) => a.end - b.end)[0]!;
    const oldAfter = load.answers.filter((a) => a.version !== "vbg" && a.start > firstNew.end);
    assert.deepEqual(oldAfter, [], "no request started after the first new answer reached an old task");
    const before = load.answers.filter((a) => a.end < firstNew.start);
    assert.ok(before.length > 0 && before.every((a) => a.version !== "vbg"), "before the switch only the old version answered");
    assert.equal(running(await baton.tasks("web")).length, 4, "old tasks gone");
    await baton.cliOk("service", "rollback", "web");
  });

  test("a version that exits at start is rolled back automatically: 0 failed requests, the CLI exits non-zero naming why", async () => {
    let r = { code: 0, stdout: "", stderr: "" };
    const load = await underLoad(18400, 60_000, async () => {
      r = await baton.cli("service", "update", "--env-add", "CRASH=1", "--update-failure-action", "rollback", "--update-monitor", "500ms", "web");
    });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /update rolled back: \d+ of 4 slots failed \(max failure ratio 0\): exit code 1/);
    assert.equal(load.failed, 0, load.errors.join("; "));
    assert.equal(load.lastVersion, "v1");
  });

  test("a version that never becomes ready is rolled back: 0 failed requests", async () => {
    const flag = join(baton.dataDir, "never-ready");
    writeFileSync(flag, "");
    let r = { code: 0, stdout: "", stderr: "" };
    const load = await underLoad(18400, 60_000, async () => {
      r = await baton.cli("service", "update", "-q", "--env-add", `NOT_READY_FILE=${flag}`, "--env-add", "VERSION=3", "--readiness-http", "/ready", "--readiness-period", "200ms", "--update-failure-action", "rollback", "--update-monitor", "1s", "--update-ready-timeout", "2s", "web");
      // -q returns at once: follow the update to its end.
      await waitFor(async () => {
        const [svc] = JSON.parse(await baton.cliOk("service", "inspect", "web")) as [{ updateStatus: { state: string } }];
        return svc.updateStatus.state === "rollback_completed";
      }, 30_000, "rolled back");
    });
    assert.equal(r.code, 0);
    assert.equal(load.failed, 0, load.errors.join("; "));
    assert.deepEqual([...load.versions.keys()], ["v1"], "the never-ready version never got traffic");
  });

  test("failure action pause: the update stops, the CLI exits non-zero; the old version keeps serving", async () => {
    const r = await baton.cli("service", "update", "--env-add", "CRASH=1", "--update-failure-action", "pause", "--update-monitor", "500ms", "web");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /update paused: \d+ of 4 slots failed/);
    const [svc] = JSON.parse(await baton.cliOk("service", "inspect", "web")) as [{ updateStatus: { state: string } }];
    assert.equal(svc.updateStatus.state, "paused");
    assert.equal((await runLoad({ port: 18400, durationMs: 300 })).failed, 0);
    await baton.cliOk("service", "rollback", "web");
  });

  test("max failure ratio 0.25 tolerates one failed slot of 4; failure action continue passes failed slots over", async () => {
    const out = await baton.cliOk("service", "update", "--env-add", "CRASH_SLOT=1", "--env-add", "VERSION=5", "--update-max-failure-ratio", "0.25", "--update-monitor", "300ms", "--update-parallelism", "0", "web");
    assert.match(out, /verify: Service web: update completed \(1 slot failed: exit code 1\)/);
    const [svc] = JSON.parse(await baton.cliOk("service", "inspect", "web")) as [{ updateStatus: { state: string; message: string } }];
    assert.equal(svc.updateStatus.state, "completed");
    assert.match(svc.updateStatus.message, /update completed \(1 slot failed: exit code 1\)/);
    const r = await baton.cli("service", "update", "--detach", "--env-add", "CRASH=1", "--update-failure-action", "continue", "--update-monitor", "300ms", "--update-parallelism", "0", "web");
    assert.equal(r.code, 0);
    const done = await waitFor(async () => {
      const [s2] = JSON.parse(await baton.cliOk("service", "inspect", "web")) as [{ updateStatus: { state: string; message: string } }];
      return s2.updateStatus.state === "completed" && s2.updateStatus;
    }, 15_000, "continue: completed with every slot failed");
    assert.match(done.message, /update completed \(4 slots failed/);
    // Back to a working spec (a rollback would return to the CRASH_SLOT one, the last before).
    await baton.cliOk("service", "update", "--env-rm", "CRASH", "--env-rm", "CRASH_SLOT", "--update-max-failure-ratio", "0", "--update-failure-action", "pause", "web");
    await waitFor(() => readyCount(baton, "web").then((n) => n === 4), 20_000, "4 ready again");
  });

  test("--dry-run prints the diff and the plan and changes nothing", async () => {
    // The service's own version (tasks keep reporting traffic counters, so the store moves on).
    const before = (await getJson(baton.socket, "/v1/services/web")) as { version: number };
    const tasksBefore = (await baton.tasks("web")).map((t) => t.ID).sort();
    const out = await baton.cliOk("service", "update", "--dry-run", "--env-add", "VERSION=9", "--update-parallelism", "3", "web");
    assert.match(out, /spec version \d+ → \d+/);
    assert.match(out, /~ task\.env\.VERSION: "\d+" → "9"/);
    assert.match(out, /~ update\.parallelism: \d+ → 3/);
    assert.match(out, /batch 1: slots 1, 2, 3\n  batch 2: slot 4/);
    assert.match(out, /Dry run: nothing was changed/);
    assert.equal(((await getJson(baton.socket, "/v1/services/web")) as { version: number }).version, before.version);
    assert.deepEqual((await baton.tasks("web")).map((t) => t.ID).sort(), tasksBefore);
  });

  test("--force replaces every task with the spec unchanged", async () => {
    const before = running(await baton.tasks("web")).map((r) => r.ID).sort();
    await baton.cliOk("service", "update", "--force", "--update-monitor", "200ms", "--update-parallelism", "0", "web");
    const after = running(await baton.tasks("web")).map((r) => r.ID);
    assert.equal(after.length, 4);
    assert.ok(after.every((id) => !before.includes(id)), "every running task is new");
  });

  test("a stale version is a conflict; bad update flags are clear errors and change nothing", async () => {
    const { version } = JSON.parse(await baton.cliOk("service", "inspect", "web"))[0] as { version: number; specInput: unknown };
    const [svc] = JSON.parse(await baton.cliOk("service", "inspect", "web")) as [{ id: string; specInput: Record<string, unknown> }];
    const post = (body: unknown) =>
      new Promise<{ status: number; body: { code: string; message: string } }>((resolve) => {
        const data = JSON.stringify(body);
        const req = request({ socketPath: baton.socket, method: "POST", path: `/v1/services/${svc.id}/update`, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data) } }, (res) => {
          let b = "";
          res.on("data", (d: Buffer) => (b += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode!, body: JSON.parse(b) }));
        });
        req.end(data);
      });
    const first = await post({ version, spec: { ...svc.specInput, labels: { a: "1" } } });
    assert.equal(first.status, 200);
    const second = await post({ version, spec: { ...svc.specInput, labels: { a: "2" } } });
    assert.equal(second.status, 409);
    assert.equal(second.body.code, "VERSION_CONFLICT");
    const svcVersion = async (): Promise<number> => ((await getJson(baton.socket, "/v1/services/web")) as { version: number }).version;
    const rev = await svcVersion();
    for (const [flags, expected] of [
      [["--update-parallelism", "-1"], /spec\.update\.parallelism: must be an integer >= 0/],
      [["--update-delay", "soon"], /spec\.update\.delay: (invalid duration "soon"|must match)/],
      [["--publish-add", "99999:80"], /spec\.publish\[1\]\.published: 99999 is not a port/],
    ] as const) {
      const r = await baton.cli("service", "update", ...flags, "web");
      assert.equal(r.code, 1, flags.join(" "));
      assert.match(r.stderr, expected);
    }
    assert.equal(await svcVersion(), rev, "nothing changed");
  });
});

describe("updates survive baton's own death", () => {
  const baton = new BatonProcess(undefined, ["--dns-addr", "127.77.0.1:0"]);
  after(() => baton.destroy());

  test("kill -9 of baton up in the middle of a 10-replica update with a delay: after restart it completes once", async () => {
    await baton.start();
    await baton.cliOk("service", "create", "--name", "ten", "--replicas", "10", "-e", "VERSION=1", "--update-delay", "300ms", "--update-monitor", "200ms", "node", APP);
    await baton.cliOk("service", "update", "--detach", "--env-add", "VERSION=2", "ten");
    await waitFor(async () => {
      const [svc] = JSON.parse(await baton.cliOk("service", "inspect", "ten")) as [{ updateStatus: { updated: string[] } }];
      return svc.updateStatus.updated.length >= 3;
    }, 20_000, "3 slots updated");
    await baton.kill("SIGKILL");
    await baton.start();
    let last = "";
    await waitFor(async () => {
      const [svc] = JSON.parse(await baton.cliOk("service", "inspect", "ten")) as [{ updateStatus: { state: string; message: string; updated: string[] } }];
      last = `${svc.updateStatus.state}: ${svc.updateStatus.message} (${svc.updateStatus.updated.length} updated)`;
      return svc.updateStatus.state === "completed";
    }, 30_000, "update completed after the restart").catch(async (err: Error) => {
      // What it was stuck on, and the tasks, for the failure report.
      throw new Error(`${err.message}; last update status: ${last}\n${await baton.cliOk("service", "ps", "ten")}`);
    });
    const rows = await baton.tasks("ten");
    const [svc] = JSON.parse(await baton.cliOk("service", "inspect", "ten")) as [{ specVersion: number }];
    const tasks = JSON.parse(await baton.cliOk("service", "ps", "ten", "--format", "json", "--no-trunc").then((o) => `[${o.trim().split("\n").join(",")}]`)) as PsRow[];
    assert.equal(running(rows).length, 10);
    // Each slot got exactly one task of the new version: none was updated twice.
    const perSlot = new Map<number, number>();
    for (const t of tasks) if (t.Slot > 0) perSlot.set(t.Slot, (perSlot.get(t.Slot) ?? 0) + 1);
    for (const [slot, n] of perSlot) assert.equal(n, 2, `slot ${slot}: one old and one new task (${n})`);
    assert.equal(svc.specVersion, 2);
  });
});

describe("canary updates", () => {
  const baton = new BatonProcess(undefined, ["--dns-addr", "127.77.0.1:0"]);
  before(() => baton.start());
  after(() => baton.destroy());

  /** Polls the canary's step while `during` runs: [time, step] pairs, to cut the answers by step. */
  async function watchSteps(during: Promise<unknown>): Promise<[number, number][]> {
    const seen: [number, number][] = [];
    let done = false;
    void during.finally(() => (done = true));
    while (!done) {
      // Straight from the API (a CLI run takes ~0.1 s): the step changes are timed within ~25 ms.
      const svc = (await getJson(baton.socket, "/v1/services/web")) as { updateStatus?: { canary?: { step: number } } };
      const step = svc.updateStatus?.canary?.step;
      if (step !== undefined && seen.at(-1)?.[1] !== step) seen.push([performance.now(), step]);
      await new Promise((r) => setTimeout(r, 20));
    }
    return seen;
  }

  test("a good version goes 10 → 50 → 100 % and is promoted; measured shares within ±5 points of the weights", async () => {
    await baton.cliOk("service", "create", "--name", "web", "--replicas", "4", "-p", "18450:80/http", "-e", "VERSION=1", "node", APP);
    await waitFor(() => readyCount(baton, "web").then((n) => n === 4), 10_000, "4 ready");
    let steps: [number, number][] = [];
    const load = await underLoad(18450, 60_000, async () => {
      const upd = baton.cliOk("service", "update", "--env-add", "VERSION=2", "--update-strategy", "canary", "--update-canary-steps", "10,50,100", "--update-canary-interval", "3s", "--update-monitor", "500ms", "web");
      steps = await watchSteps(upd);
      assert.match(await upd, /updated and converged/);
    });
    assert.equal(load.failed, 0, load.errors.join("; "));
    const [svc] = JSON.parse(await baton.cliOk("service", "inspect", "web")) as [{ updateStatus: { state: string; message: string } }];
    assert.equal(svc.updateStatus.state, "completed");
    for (const [i, share] of [[0, 10], [1, 50]] as const) {
      const from = steps.find(([, s]) => s === i)?.[0];
      const to = steps.find(([, s]) => s === i + 1)?.[0];
      assert.ok(from !== undefined && to !== undefined, `saw step ${i}: ${JSON.stringify(steps)}`);
      // Leave out the edges: the step's weights reach the mesh a moment after the store says so.
      const window = load.answers.filter((a) => a.start > from! + 300 && a.end < to! - 300);
      const measured = (100 * window.filter((a) => a.version === "v2").length) / window.length;
      assert.ok(window.length > 200, `enough requests at ${share}% (${window.length})`);
      assert.ok(Math.abs(measured - share) <= 5, `step ${i}: ${measured.toFixed(1)} % of requests to the new version, weight ${share} %`);
    }
    assert.equal((await runLoad({ port: 18450, durationMs: 300 })).lastVersion, "v2");
  });

  test("a version that answers 500 is aborted at its first step and rolled back at once: the old tasks never stopped, only the canary's share failed; the CLI says why", async () => {
    const before = running(await baton.tasks("web")).map((t) => t.ID).sort();
    assert.equal(before.length, 4);
    let r = { code: 0, stdout: "", stderr: "" };
    const load = await underLoad(18450, 60_000, async () => {
      r = await baton.cli("service", "update", "--env-add", "FAIL500=1", "--env-add", "VERSION=3", "--update-strategy", "canary", "--update-canary-steps", "10,100", "--update-canary-interval", "5s", "--update-canary-max-error-rate", "1%", "web");
    });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /update rolled back: canary aborted at 10%: error rate \d+(\.\d)?% \(\d+ of \d+ requests\) > 1%/);
    const bad = load.answers.filter((a) => a.version === "v3").length;
    assert.ok(bad > 0 && bad < load.answers.length * 0.2, `only the canary's share saw the bad version (${bad} of ${load.answers.length})`);
    // Every failed request is a 500 of the canary: none of the good version, no connection error
    // (after the abort the old tasks serve on; they are not stopped and replaced one by one).
    assert.equal(load.failed, load.answers.filter((a) => a.version === "v3" && a.status === 500).length, `failures other than the canary's 500s: ${load.errors.join("; ")}`);
    assert.deepEqual(running(await baton.tasks("web")).map((t) => t.ID).sort(), before, "the same old tasks run: the rollback replaced none");
    assert.equal((await runLoad({ port: 18450, durationMs: 300 })).lastVersion, "v2", "back on the good version");
  });
});
