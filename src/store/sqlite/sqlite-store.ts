import Database from "better-sqlite3";
import type { Clock } from "../../lib/clock.js";
import { systemClock } from "../../lib/clock.js";
import { BatonError } from "../../lib/errors.js";
import type { Kind } from "../../model/objects.js";
import { CachedStore, type Persistence } from "../cached-store.js";
import type { StoreEvent, StoredObject } from "../store.js";
import { migrate } from "./migrations.js";

/**
 * The embedded default store: one SQLite file, WAL with synchronous=FULL so a commit is on disk
 * (fsynced) before update() resolves and the API answers.
 */
export function openSqliteStore(path: string, opts: { clock?: Clock; historyLimit?: number } = {}): CachedStore {
  let db: Database.Database;
  try {
    // BATON_SQLITE_BINDING points at an alternative better_sqlite3.node (e.g. one built for another
    // Node ABI by scripts/node24-check.sh); unset, the package's own build is used.
    const nativeBinding = process.env.BATON_SQLITE_BINDING;
    db = new Database(path, nativeBinding ? { nativeBinding } : {});
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("busy_timeout = 5000");
    migrate(db);
  } catch (err) {
    throw new BatonError("UNAVAILABLE", `cannot open store ${path}: ${(err as Error).message}`, [], { cause: err });
  }
  const upsert = db.prepare("INSERT INTO objects(kind, id, version, data) VALUES (?, ?, ?, ?) ON CONFLICT(kind, id) DO UPDATE SET version = excluded.version, data = excluded.data");
  const remove = db.prepare("DELETE FROM objects WHERE kind = ? AND id = ?");
  const logChange = db.prepare("INSERT INTO changes(revision, kind, op, id, data) VALUES (?, ?, ?, ?, ?)");
  const trim = db.prepare("DELETE FROM changes WHERE revision <= ?");
  const setRev = db.prepare("UPDATE meta SET value = ? WHERE key = 'revision'");

  const commit = db.transaction((revision: number, events: StoreEvent[], historyLimit: number) => {
    for (const e of events) {
      const json = JSON.stringify(e.object);
      if (e.op === "delete") remove.run(e.kind, e.object.id);
      else upsert.run(e.kind, e.object.id, e.object.version, json);
      logChange.run(revision, e.kind, e.op, e.object.id, json);
    }
    setRev.run(String(revision));
    // Trim in steps of 1000 revisions so most commits skip the delete.
    if (revision % 1000 === 0) trim.run(revision - historyLimit);
  });

  const persistence: Persistence = {
    load() {
      const revision = Number((db.prepare("SELECT value FROM meta WHERE key = 'revision'").get() as { value: string }).value);
      const objects = (db.prepare("SELECT kind, data FROM objects").all() as { kind: Kind; data: string }[]).map((r) => ({
        kind: r.kind,
        object: JSON.parse(r.data) as StoredObject,
      }));
      const history = (db.prepare("SELECT revision, kind, op, data FROM changes ORDER BY revision, rowid").all() as {
        revision: number; kind: Kind; op: StoreEvent["op"]; data: string;
      }[]).map((r) => ({ revision: r.revision, kind: r.kind, op: r.op, object: JSON.parse(r.data) as StoredObject }));
      return { revision, objects, history };
    },
    commit: (revision, events, historyLimit) => commit(revision, events, historyLimit),
    close: () => db.close(),
  };
  return new CachedStore(persistence, opts.clock ?? systemClock, opts.historyLimit);
}
