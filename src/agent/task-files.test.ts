import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../lib/log.js";
import { TaskFiles } from "./task-files.js";
import type { TaskFile } from "../dispatcher/protocol.js";

const file = (kind: "secret" | "config", target: string, data: string, mode: number): TaskFile => ({ kind, name: target, target, data: Buffer.from(data).toString("base64"), mode });

test("a task's files: written with their modes, located again after a restart without rewriting, removed with the task", () => {
  const dir = mkdtempSync(join(tmpdir(), "baton-files-"));
  try {
    // Not a tmpfs: the files go under the data dir (the fallback), so nothing is left in /dev/shm.
    const files = TaskFiles.open(dir, silentLogger(), join(dir, "no-tmpfs"));
    assert.equal(files.inMemory, false);
    assert.equal(files.root, join(dir, "files"));
    const list = [file("secret", "db_password", "pw", 0o400), file("config", "app.conf", "a=1", 0o444), file("secret", "/etc/abs.key", "k", 0o440)];
    const written = files.write("t1", list);
    assert.equal(readFileSync(join(written.secretsDir!, "db_password"), "utf8"), "pw");
    assert.equal(statSync(join(written.secretsDir!, "db_password")).mode & 0o777, 0o400);
    assert.equal(statSync(join(written.configsDir!, "app.conf")).mode & 0o777, 0o444);
    assert.deepEqual(written.binds.map((b) => b.target), ["/run/secrets/db_password", "/app.conf", "/etc/abs.key"]);
    assert.equal(readFileSync(written.binds[2]!.source, "utf8"), "k");
    assert.equal(statSync(join(files.root, "t1")).mode & 0o777, 0o700);
    // An agent restart: the same directories, the files untouched.
    const before = statSync(join(written.secretsDir!, "db_password")).mtimeMs;
    assert.deepEqual(files.locate("t1", list), written);
    assert.equal(statSync(join(written.secretsDir!, "db_password")).mtimeMs, before);
    // Files of tasks that ended while the agent was away go at start; running ones stay.
    files.write("t2", [file("secret", "x", "y", 0o400)]);
    files.removeAllBut(new Set(["t1"]));
    assert.equal(existsSync(join(files.root, "t2")), false);
    assert.equal(existsSync(join(files.root, "t1")), true);
    files.removeRootIfEmpty();
    assert.equal(existsSync(files.root), true, "kept while a task has files");
    files.remove("t1");
    assert.equal(existsSync(join(files.root, "t1")), false);
    files.removeRootIfEmpty();
    assert.equal(existsSync(files.root), false, "removed once empty (baton down)");
    assert.throws(() => files.write("../escape", list), /invalid task id/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
