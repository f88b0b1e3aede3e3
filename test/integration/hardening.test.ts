// Hardening issue (#7): the holes a review of the core found, against a real `baton up`.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BatonProcess, BIN, ROOT, isAlive, waitFor } from "../harness/baton.js";

describe("one baton per data dir", () => {
  const dir = mkdtempSync(join(tmpdir(), "baton-lock-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  // issue #7: the pid-file check and write were not atomic, so two could start.
  test("two `baton up` started at the same moment: exactly one runs, the other says why", async () => {
    const start = () => {
      const p = spawn(process.execPath, [BIN, "up", "--data-dir", dir], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], detached: true });
      let out = "";
      p.stdout!.on("data", (d: Buffer) => (out += d.toString()));
      p.stderr!.on("data", (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => p.on("exit", (code) => r(code)));
      return { p, exited, out: () => out };
    };
    const a = start();
    const b = start();
    const first = await Promise.race([a.exited.then(() => a), b.exited.then(() => b)]);
    const winner = first === a ? b : a;
    assert.equal(await first.exited, 1);
    assert.match(first.out(), /baton is already running on .*/);
    // Give the winner a moment to come up fully: it must still be running then, not just now.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(winner.p.exitCode, null, `the other one keeps running; its output:\n${winner.out()}`);
    try {
      process.kill(-winner.p.pid!, "SIGKILL");
    } catch (err) {
      throw new Error(`the winner ended on its own; its output:\n${winner.out()}`, { cause: err });
    }
    await winner.exited;
    // The lock died with its holder: a new baton starts at once, no stale pid file in the way.
    const c = new BatonProcess(dir);
    await c.start();
    await c.kill("SIGKILL");
  });
});

describe("the exit status of a task that ends while baton is down", () => {
  const baton = new BatonProcess();
  after(() => baton.destroy());

  // issue #7: a task that exited while Baton was down always counted as failed, so a clean exit
  // used up on-failure attempts (and was restarted).
  test("exit 0 while baton is down is complete (on-failure does not restart it); exit 3 is failed with its code and restarted", async () => {
    await baton.start();
    // Each waits for a file to appear, then exits with its code: the test decides when.
    const gate = join(baton.dataDir, "go");
    for (const [name, code] of [["clean", 0], ["broken", 3]] as const) {
      await baton.cliOk("service", "create", "--name", name, "--restart-condition", "on-failure", "sh", "-c", `while [ ! -e ${gate} ]; do sleep 0.05; done; exit ${code}`);
    }
    const pids = (await Promise.all(["clean", "broken"].map((s) => baton.tasks(s)))).map((rows) => rows[0]!.Pid!);
    await baton.kill("SIGKILL");
    await import("node:fs").then((fs) => fs.writeFileSync(gate, ""));
    await waitFor(() => pids.every((p) => !isAlive(p)), 5000, "both tasks exited while baton was down");
    await baton.start();
    const clean = await waitFor(async () => (await baton.tasks("clean")).find((r) => r.CurrentState === "complete"), 10_000, "clean task reported complete");
    assert.equal(clean.Pid, pids[0]);
    // The gate stays open, so its replacements fail too: a restart loop on backoff, as it should.
    const broken = await waitFor(async () => {
      const rows = await baton.tasks("broken");
      return rows.length >= 2 && rows;
    }, 10_000, "broken task replaced");
    const ended = broken.find((r) => r.Pid === pids[1])!;
    assert.equal(ended.CurrentState, "failed");
    assert.equal(ended.Error, "exit code 3");
    assert.equal((await baton.tasks("clean")).length, 1, "the clean exit used no restart");
  });
});
