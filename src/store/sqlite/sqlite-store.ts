import { DatabaseSync } from "node:sqlite";
import type { Clock } from "../../lib/clock.js";
import { systemClock } from "../../lib/clock.js";
import { BatonError } from "../../lib/errors.js";
import type { Kind } from "../../model/objects.js";
import { CachedStore, type Persistence } from "../cached-store.js";
import type { StoreEvent, StoredObject } from "../store.js";
import { migrate } from "./migrations.js";

/**
 * The embedded default store: one SQLite file through Node's built-in node:sqlite (nothing to
 * compile), WAL with synchronous=FULL so a commit is on disk (fsynced) before update() resolves
 * and the API answers.
 */
export function openSqliteStore(path: string, opts: { clock?: Clock; historyLimit?: number } = {}): CachedStore {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path);
    db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;");
    migrate(db);
  } catch (err) {
    throw new BatonError("UNAVAILABLE", `cannot open store ${path}: ${(err as Error).message}`, [], { cause: err });
  }
  const upsert = db.prepare("INSERT INTO objects(kind, id, version, data) VALUES (?, ?, ?, ?) ON CONFLICT(kind, id) DO UPDATE SET version = excluded.version, data = excluded.data");
  const remove = db.prepare("DELETE FROM objects WHERE kind = ? AND id = ?");
  const logChange = db.prepare("INSERT INTO changes(revision, kind, op, id, data) VALUES (?, ?, ?, ?, ?)");
  const trim = db.prepare("DELETE FROM changes WHERE revision <= ?");
  const setMeta = db.prepare("UPDATE meta SET value = ? WHERE key = ?");
  const getMeta = db.prepare("SELECT value FROM meta WHERE key = ?");

  const persistence: Persistence = {
    load() {
      const revision = Number((getMeta.get("revision") as { value: string }).value);
      const compacted = Number((getMeta.get("compacted") as { value: string }).value);
      const objects = (db.prepare("SELECT kind, data FROM objects").all() as unknown as { kind: Kind; data: string }[]).map((r) => ({
        kind: r.kind,
        object: JSON.parse(r.data) as StoredObject,
      }));
      const rows = db.prepare("SELECT revision, kind, op, data FROM changes WHERE revision > ? ORDER BY revision, rowid").all(compacted) as unknown as {
        revision: number; kind: Kind; op: StoreEvent["op"]; data: string;
      }[];
      const history = rows.map((r) => ({ revision: r.revision, kind: r.kind, op: r.op, object: JSON.parse(r.data) as StoredObject }));
      return { revision, compacted, objects, history };
    },
    commit(revision, events, compactThrough) {
      // One SQLite transaction: all of it is on disk when COMMIT returns, or none of it.
      db.exec("BEGIN IMMEDIATE");
      try {
        for (const e of events) {
          const json = JSON.stringify(e.object);
          if (e.op === "delete") remove.run(e.kind, e.object.id);
          else upsert.run(e.kind, e.object.id, e.object.version, json);
          logChange.run(revision, e.kind, e.op, e.object.id, json);
        }
        setMeta.run(String(revision), "revision");
        if (compactThrough !== undefined) {
          trim.run(compactThrough);
          setMeta.run(String(compactThrough), "compacted");
        }
        db.exec("COMMIT");
      } catch (err) {
        if (db.isTransaction) db.exec("ROLLBACK");
        throw err;
      }
    },
    settings: () => ({
      journalMode: String((db.prepare("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode),
      synchronous: Number((db.prepare("PRAGMA synchronous").get() as { synchronous: number }).synchronous),
    }),
    close: () => db.close(),
  };
  return new CachedStore(persistence, opts.clock ?? systemClock, opts.historyLimit);
}
