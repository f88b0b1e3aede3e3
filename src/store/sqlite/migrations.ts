import type { DatabaseSync } from "node:sqlite";

/** Schema migrations in order; the index + 1 is the schema version they lead to. Never edit one that shipped. */
const migrations: string[] = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   INSERT INTO meta(key, value) VALUES ('revision', '0');
   CREATE TABLE objects (kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, id));
   CREATE TABLE changes (revision INTEGER NOT NULL, kind TEXT NOT NULL, op TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL);
   CREATE INDEX changes_revision ON changes(revision);`,
  // The revision through which history is compacted: a watch from an older revision is refused.
  // Schema 1 trimmed whole revisions (revision <= X), so what is left starts at a whole revision.
  `INSERT INTO meta(key, value) VALUES ('compacted',
     (SELECT COALESCE(MIN(revision) - 1, (SELECT value FROM meta WHERE key = 'revision')) FROM changes));`,
  // Services gained an endpoint spec (published ports, balancing) with the mesh.
  `UPDATE objects SET data = json_set(data, '$.spec.endpoint', json('{"ports":[],"balance":"round-robin","waitForBackendMs":5000}'))
     WHERE kind = 'services' AND json_extract(data, '$.spec.endpoint') IS NULL;`,
  // Services gained update and rollback configs with the updater.
  `UPDATE objects SET data = json_set(data,
       '$.spec.update', json('{"parallelism":1,"delayMs":0,"failureAction":"pause","monitorMs":5000,"maxFailureRatio":0,"readyTimeoutMs":60000,"order":"start-first","strategy":"rolling"}'),
       '$.spec.rollback', json('{"parallelism":1,"delayMs":0,"failureAction":"pause","monitorMs":5000,"maxFailureRatio":0,"readyTimeoutMs":60000,"order":"start-first","strategy":"rolling"}'))
     WHERE kind = 'services' AND json_extract(data, '$.spec.update') IS NULL;`,
];

export const schemaVersion = migrations.length;

export function userVersion(db: DatabaseSync): number {
  return Number((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version);
}

export function migrate(db: DatabaseSync): void {
  const current = userVersion(db);
  if (current > migrations.length) {
    throw new Error(`store schema version ${current} is newer than this baton (${migrations.length}); upgrade baton`);
  }
  for (let v = current; v < migrations.length; v++) {
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(migrations[v]!);
      db.exec(`PRAGMA user_version = ${v + 1}`);
      db.exec("COMMIT");
    } catch (err) {
      db.exec("ROLLBACK");
      throw err;
    }
  }
}
