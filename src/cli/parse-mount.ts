import { InvalidArgumentError } from "commander";
import type { MountInput } from "../input/schemas.js";

const KEYS: Record<string, keyof MountInput> = {
  type: "type",
  source: "source",
  src: "source",
  target: "target",
  destination: "target",
  dst: "target",
  readonly: "readOnly",
  ro: "readOnly",
  "tmpfs-size": "tmpfsSize",
};

/**
 * docker's --mount: `type=volume,source=data,target=/data[,readonly]` (also src, dst,
 * destination, ro, readonly=true|false, tmpfs-size=64m). The API validates the values and names
 * the field; this only splits the text, and refuses keys docker has not.
 */
export function parseMount(text: string): MountInput {
  const out: Record<string, unknown> = {};
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf("=");
    const key = (eq < 0 ? part : part.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? undefined : part.slice(eq + 1);
    const field = KEYS[key];
    if (!field) throw new InvalidArgumentError(`--mount "${text}": unknown key "${key}" (use type, source, target, readonly, tmpfs-size)`);
    if (field === "readOnly") {
      if (value !== undefined && !["true", "false", "1", "0"].includes(value)) throw new InvalidArgumentError(`--mount "${text}": readonly takes true or false, not "${value}"`);
      out.readOnly = value === undefined || value === "true" || value === "1";
    } else if (value === undefined) throw new InvalidArgumentError(`--mount "${text}": ${key} needs a value (${key}=…)`);
    else out[field] = value;
  }
  if (out.type === undefined) out.type = "volume";
  if (out.target === undefined) throw new InvalidArgumentError(`--mount "${text}": target=… is required`);
  return out as MountInput;
}

/** Repeatable --mount: each value parsed as it comes, so a bad one is named at once. */
export const collectMount = (v: string, prev: MountInput[] = []): MountInput[] => [...prev, parseMount(v)];
