import { openSync, readSync, closeSync, fstatSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { LineCounter, parseDocument } from "yaml";
import { formatBytes } from "../../input/bytes.js";
import { formatPath, type FieldProblem } from "../../lib/errors.js";
import { parseDotenv } from "./dotenv.js";
import { interpolateTree, type Lookup } from "./interpolate.js";
import { exactLineOf, lineMap, lineOf, type Path } from "./lines.js";
import { mergeStackFiles } from "./merge.js";

/** Limits against hostile files: a stack file is a few KiB; these leave room and stop bombs. */
export const loadLimits = {
  /** Bytes per file; a larger one is refused before it is read. */
  maxFileBytes: 1024 * 1024,
  /** yaml's guard against "billion laughs": aliases resolved per document. */
  maxAliasCount: 100,
};

/** `0440` is octal, as docker's YAML reads it (file modes); yaml's core schema would say 440. */
const octalInt = { identify: (v: unknown) => typeof v === "number", default: true, tag: "tag:yaml.org,2002:int", format: "OCT", test: /^0[0-7]+$/, resolve: (s: string) => parseInt(s, 8) };

export interface LoadedStack {
  /** The merged, interpolated document (not yet validated). */
  model: unknown;
  /** The directory of the first file: relative paths (bind mounts, env_file, secret files, working_dir) resolve against it. */
  dir: string;
  /** The environment the files were interpolated with: this process's, over `.env` beside the first file. */
  env: Lookup;
  /** " (line 12)", or " (b.yml line 12)" when several files were given; "" when unknown. */
  locate(path: Path): string;
  /** Problems found while reading: YAML errors, interpolation errors. */
  problems: FieldProblem[];
  /** Unset variables, each once. */
  warnings: string[];
}

interface ReadFile {
  name: string;
  lines: Map<string, number>;
}

/** Reads at most `max` + 1 bytes: the size check does not trust a file that grows meanwhile. */
function readCapped(path: string, max: number): string {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    if (size > max) throw new RangeError(`${formatBytes(size)} is larger than the ${formatBytes(max)} a stack file may be`);
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    for (let r; n <= max && (r = readSync(fd, buf, n, max + 1 - n, null)) > 0; ) n += r;
    if (n > max) throw new RangeError(`it is larger than the ${formatBytes(max)} a stack file may be`);
    return buf.subarray(0, n).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

/** A stack file is a few levels deep; far deeper is hostile, and every later walk is recursive. */
const MAX_DEPTH = 64;

/**
 * The first path at which `v` contains itself (an anchor used inside itself) or nests deeper
 * than MAX_DEPTH, or undefined.
 */
function findEndless(v: unknown, path: Path = [], seen: Set<unknown> = new Set()): { path: Path; problem: string; deep?: boolean } | undefined {
  if (v === null || typeof v !== "object") return undefined;
  if (seen.has(v)) return { path, problem: "an anchor is used inside itself (an endless structure)" };
  if (path.length > MAX_DEPTH) return { path: path.slice(0, 4), problem: `nested more than ${MAX_DEPTH} levels deep`, deep: true };
  seen.add(v);
  for (const [k, x] of Array.isArray(v) ? v.entries() : Object.entries(v)) {
    const found = findEndless(x, [...path, k], seen);
    if (found) return found;
  }
  seen.delete(v);
  return undefined;
}

/**
 * Reads, parses and interpolates the stack files, then merges them (later overrides earlier).
 * Never throws for a bad file: every problem is returned with the file and line.
 */
export function loadStackFiles(paths: string[], processEnv: NodeJS.ProcessEnv = process.env): LoadedStack {
  const problems: FieldProblem[] = [];
  const warnings = new Set<string>();
  const dir = dirname(resolve(paths[0] ?? "."));
  const dotenv = new Map<string, string>();
  try {
    const text = readCapped(join(dir, ".env"), loadLimits.maxFileBytes);
    for (const [k, v] of parseDotenv(text, join(dir, ".env"))) dotenv.set(k, v);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") problems.push({ path: [".env"], problem: (err as Error).message });
  }
  // The shell's environment wins over .env, as in compose.
  const env: Lookup = (name) => processEnv[name] ?? dotenv.get(name);
  const read: ReadFile[] = [];
  const docs: unknown[] = [];
  const many = paths.length > 1;
  const where = (f: ReadFile, line: number | undefined): string => (line === undefined ? "" : many ? ` (${f.name} line ${line})` : ` (line ${line})`);

  for (const path of paths) {
    const name = basename(path);
    const fileProblem = (problem: string, line?: number): void => void problems.push({ path: [name], problem: line === undefined ? problem : `${problem} (line ${line})` });
    let text: string;
    try {
      text = readCapped(path, loadLimits.maxFileBytes);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      fileProblem(e instanceof RangeError ? e.message : `cannot read ${path}: ${e.code ?? e.message}`);
      continue;
    }
    const counter = new LineCounter();
    let doc: ReturnType<typeof parseDocument>;
    try {
      doc = parseDocument(text, { merge: true, uniqueKeys: true, lineCounter: counter, customTags: (tags) => [octalInt as never, ...tags] });
    } catch (err) {
      // The parser recurses: a file nested thousands of levels deep exhausts the stack.
      fileProblem(err instanceof RangeError ? `nested too deeply to parse` : (err as Error).message);
      continue;
    }
    if (doc.errors.length) {
      for (const e of doc.errors.slice(0, 10)) {
        if (/Maximum call stack/.test(e.message)) fileProblem("nested too deeply to parse");
        else fileProblem(e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, ""), e.linePos?.[0].line);
      }
      continue;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: loadLimits.maxAliasCount });
    } catch (err) {
      const msg = (err as Error).message;
      fileProblem(/Excessive alias count/.test(msg) ? `too many alias expansions (more than ${loadLimits.maxAliasCount}): refused as a possible YAML bomb` : err instanceof RangeError ? "nested too deeply to read" : msg);
      continue;
    }
    const endless = findEndless(value);
    if (endless?.deep) {
      // No line map here: it walks the document recursively too.
      fileProblem(`${formatPath(endless.path)}…: ${endless.problem}`);
      continue;
    }
    const f: ReadFile = { name, lines: lineMap(doc, counter) };
    if (endless) {
      problems.push({ path: endless.path, problem: `${endless.problem}${where(f, lineOf(f.lines, endless.path))}` });
      continue;
    }
    value = interpolateTree(
      value,
      env,
      (p, problem) => problems.push({ path: p, problem: `${problem}${where(f, lineOf(f.lines, p))}` }),
      (_p, v) => warnings.add(`the variable ${v} is not set: using an empty string`),
    );
    read.push(f);
    docs.push(value);
  }

  const locate = (path: Path): string => {
    // The file that last set this exact path, else the nearest ancestor in any file (last first).
    for (let n = path.length; n >= 0; n--) {
      for (const f of [...read].reverse()) {
        const line = exactLineOf(f.lines, path.slice(0, n));
        if (line !== undefined) return where(f, line);
      }
    }
    return "";
  };
  return { model: mergeStackFiles(docs), dir, env, locate, problems, warnings: [...warnings] };
}
