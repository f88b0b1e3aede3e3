import { accessSync, constants, existsSync, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";

/** What `service create`'s positional arguments mean: a command to run, or an image and its command. */
export type DriverChoice = { driver: "process"; command: string[] } | { driver: "docker"; image: string; command: string[] };

export interface DriverRuleInput {
  /** The positional arguments: COMMAND [ARG...] or IMAGE [ARG...]. */
  args: string[];
  /** `--driver`, when given. */
  driver?: "process" | "docker";
  /** `--image`, when given: then every positional argument is the container's command. */
  image?: string;
  /** True when `name` is an existing file (resolved against the working directory) or a command on PATH. */
  isExecutable(name: string): boolean;
}

/**
 * The rule (docs/docker.md), in order:
 *   1. `--driver` wins: docker takes `--image` or else the first argument as the image.
 *   2. `--image` means docker.
 *   3. The first argument looks like an image reference — it has a `:tag`, a `@digest` or a `/`
 *      inside it (`nginx:alpine`, `team/app`, `registry:5000/app`), does not start with `/` or
 *      `.` — and it is not an existing file or a command on PATH → docker.
 *   4. Otherwise it is a command: process.
 * So `nginx` alone is a command; write `nginx:latest` (or `--image nginx`) for the image.
 */
export function chooseDriver(i: DriverRuleInput): DriverChoice {
  const [first, ...rest] = i.args;
  if (i.driver === "process") return { driver: "process", command: i.args };
  if (i.driver === "docker" || i.image !== undefined) {
    if (i.image !== undefined) return { driver: "docker", image: i.image, command: i.args };
    return { driver: "docker", image: first ?? "", command: rest };
  }
  if (first !== undefined && looksLikeImage(first) && !i.isExecutable(first)) return { driver: "docker", image: first, command: rest };
  return { driver: "process", command: i.args };
}

export function looksLikeImage(arg: string): boolean {
  if (arg.startsWith("/") || arg.startsWith(".") || /\s/.test(arg)) return false;
  return /[:@]/.test(arg) || (arg.includes("/") && !arg.endsWith("/"));
}

/**
 * A file at `name` (relative to `cwd`; executable or not, so that a mistyped script is reported by
 * the process driver rather than pulled as an image) or, for a bare name, an executable on PATH.
 */
export function isExecutableIn(name: string, cwd: string, pathEnv = process.env.PATH ?? ""): boolean {
  if (name.includes("/")) return existsSync(isAbsolute(name) ? name : resolve(cwd, name));
  return pathEnv.split(delimiter).filter(Boolean).map((d) => join(d, name)).some((c) => {
    try {
      accessSync(c, constants.X_OK);
      return statSync(c).isFile();
    } catch {
      return false;
    }
  });
}
