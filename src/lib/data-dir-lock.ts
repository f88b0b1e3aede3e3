import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { BatonError } from "./errors.js";

export interface DataDirLock {
  release(): void;
}

/**
 * One baton process per data dir: a second one would run every task twice. The lock is an
 * exclusive SQLite (fcntl) lock on DIR/baton.lock, held for the life of the process: taking it
 * is atomic, and the kernel drops it when the process dies, however it dies (kill -9 included).
 * DIR/baton.pid only names the holder in the error message.
 */
export function lockDataDir(dataDir: string): DataDirLock {
  const db = new DatabaseSync(join(dataDir, "baton.lock"), { timeout: 0 });
  try {
    db.exec("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;");
  } catch (err) {
    db.close();
    let holder = "";
    try {
      holder = ` (pid ${Number(readFileSync(join(dataDir, "baton.pid"), "utf8"))})`;
    } catch {
      /* no pid file: the holder is still starting */
    }
    throw new BatonError("UNAVAILABLE", `baton is already running on ${dataDir}${holder}`, [], { cause: err });
  }
  writeFileSync(join(dataDir, "baton.pid"), String(process.pid));
  return {
    release: () => {
      if (!db.isOpen) return;
      db.exec("ROLLBACK");
      db.close();
    },
  };
}
