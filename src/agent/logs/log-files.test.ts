import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, rmSync, statSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LogFiles } from "./log-files.js";

function withFiles(fn: (f: LogFiles) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "baton-logs-"));
  try {
    fn(new LogFiles(dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("a log over its cap is copied to .1 and truncated in place", () =>
  withFiles((f) => {
    const p = f.pathOf("t1");
    appendFileSync(p, "a\n".repeat(3000));
    assert.equal(f.rotateIfNeeded("t1", 10_000), false);
    appendFileSync(p, "b\n".repeat(3000));
    assert.equal(f.rotateIfNeeded("t1", 10_000), true);
    assert.equal(statSync(p).size, 0);
    assert.equal(statSync(`${p}.1`).size, 12_000);
    appendFileSync(p, "c\n");
    const { lines } = f.readTail("t1", 2);
    assert.deepEqual(lines, ["b", "c"], "tail reads across the rotated file");
  }));

test("following restarts at the top after a rotation and keeps partial lines for later", () =>
  withFiles((f) => {
    const p = f.pathOf("t2");
    appendFileSync(p, "one\ntw");
    let r = f.readFrom("t2", 0, "");
    assert.deepEqual(r.lines, ["one"]);
    assert.equal(r.partial, "tw");
    appendFileSync(p, "o\n");
    r = f.readFrom("t2", r.offset, r.partial);
    assert.deepEqual(r.lines, ["two"]);
    appendFileSync(p, "x".repeat(100) + "\n");
    f.rotateIfNeeded("t2", 50);
    appendFileSync(p, "after\n");
    r = f.readFrom("t2", r.offset, r.partial);
    assert.deepEqual(r.lines, ["after"]);
  }));

test("remove deletes both files", () =>
  withFiles((f) => {
    appendFileSync(f.pathOf("t3"), "x\n");
    appendFileSync(`${f.pathOf("t3")}.1`, "x\n");
    f.remove("t3");
    assert.ok(!existsSync(f.pathOf("t3")) && !existsSync(`${f.pathOf("t3")}.1`));
  }));
