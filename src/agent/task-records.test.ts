import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TaskRecords } from "./task-records.js";

test("records are saved whole (temp file, fsync, rename), read back, and removed; a torn file is dropped", async () => {
  const dir = mkdtempSync(join(tmpdir(), "baton-records-"));
  try {
    const r = new TaskRecords(dir);
    await r.save({ taskId: "a", logPath: "/x.log", statePrefix: r.statePrefixOf("a"), port: 20001 });
    await r.save({ taskId: "a", logPath: "/x.log", statePrefix: r.statePrefixOf("a"), port: 20001, handle: { pid: 42, groupId: 41, startTime: "7" }, startedAt: 5 });
    assert.equal(existsSync(join(dir, "a.json.tmp")), false, "no temp file left behind");
    writeFileSync(join(dir, "torn.json"), '{"taskId": "torn", "hand');
    const all = r.loadAll();
    assert.deepEqual(all.map((x) => [x.taskId, x.handle?.pid]), [["a", 42]]);
    assert.equal(existsSync(join(dir, "torn.json")), false, "a record cut short by a crash is dropped");
    r.remove("a");
    assert.deepEqual(r.loadAll(), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
