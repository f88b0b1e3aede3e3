import { readFileSync } from "node:fs";
import { InvalidArgumentError } from "commander";

export const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** Integers as commander arguments; "-1" is passed through so the API names the field. */
export function parseInteger(v: string): number {
  if (!/^-?\d+$/.test(v.trim())) throw new InvalidArgumentError(`"${v}" is not an integer`);
  return Number(v);
}

export function parseNumber(v: string): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n)) throw new InvalidArgumentError(`"${v}" is not a number`);
  return n;
}

/** `-e KEY` without a value takes KEY from this environment, as docker does. */
export function resolveEnv(entries: string[]): string[] {
  return entries.map((e) => (e.includes("=") ? e : `${e}=${process.env[e] ?? ""}`));
}

/** docker --env-file: KEY=VALUE per line, # comments and blank lines skipped. */
export function readEnvFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new InvalidArgumentError(`cannot read env file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return text
    .split("\n")
    .map((l) => l.replace(/\r$/, ""))
    .filter((l) => l.trim() && !l.trimStart().startsWith("#"));
}

export function parseLabels(entries: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries) {
    const i = e.indexOf("=");
    out[i < 0 ? e : e.slice(0, i)] = i < 0 ? "" : e.slice(i + 1);
  }
  return out;
}
