import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../lib/log.js";
import type { Driver } from "./drivers/driver.js";
import { removeDeletedVolumes } from "./volume-cleanup.js";

/** A driver with engine volumes, as pruneVolumes sees them. */
function engine(volumes: string[]): Driver & { volumes: Set<string> } {
  const d = {
    name: "docker",
    volumes: new Set(volumes),
    async pruneVolumes(keep: ReadonlySet<string>) {
      const gone = [...d.volumes].filter((v) => !keep.has(v));
      for (const v of gone) d.volumes.delete(v);
      return gone;
    },
  };
  return d as unknown as Driver & { volumes: Set<string> };
}

test("a removed volume's directory and engine volume go; existing ones and ones a task still mounts stay", async () => {
  const dir = mkdtempSync(join(tmpdir(), "baton-volclean-"));
  try {
    for (const v of ["data", "old", "busy"]) {
      mkdirSync(join(dir, v));
      writeFileSync(join(dir, v, "f"), v);
    }
    const docker = engine(["data", "old", "busy", "other"]);
    const removed = await removeDeletedVolumes({ names: ["data"], inUse: new Set(["busy"]), volumesDir: dir, drivers: [docker], log: silentLogger() });
    assert.deepEqual(removed.sort(), ["directory old", "docker volume old", "docker volume other"]);
    assert.deepEqual(["data", "old", "busy"].map((v) => existsSync(join(dir, v, "f"))), [true, false, true]);
    assert.deepEqual([...docker.volumes].sort(), ["busy", "data"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a name sent by the manager is only ever kept: '..' or a path in the set removes nothing more", async () => {
  const root = mkdtempSync(join(tmpdir(), "baton-volclean-"));
  try {
    const dir = join(root, "volumes");
    mkdirSync(join(dir, "keep"), { recursive: true });
    writeFileSync(join(root, "outside"), "x");
    assert.deepEqual(await removeDeletedVolumes({ names: ["keep", "..", "../outside"], inUse: new Set(), volumesDir: dir, drivers: [], log: silentLogger() }), []);
    assert.ok(existsSync(join(root, "outside")) && existsSync(join(dir, "keep")));
    // No volumes directory yet: nothing to do.
    assert.deepEqual(await removeDeletedVolumes({ names: [], inUse: new Set(), volumesDir: join(root, "none"), drivers: [], log: silentLogger() }), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
