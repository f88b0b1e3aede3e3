import type Database from "better-sqlite3";

/** Schema migrations in order; the index + 1 is the schema version they lead to. Never edit one that shipped. */
const migrations: string[] = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   INSERT INTO meta(key, value) VALUES ('revision', '0');
   CREATE TABLE objects (kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, id));
   CREATE TABLE changes (revision INTEGER NOT NULL, kind TEXT NOT NULL, op TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL);
   CREATE INDEX changes_revision ON changes(revision);`,
];

export const schemaVersion = migrations.length;

export function migrate(db: Database.Database): void {
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > migrations.length) {
    throw new Error(`store schema version ${current} is newer than this baton (${migrations.length}); upgrade baton`);
  }
  for (let v = current; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
