import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import type { FileReferenceInput, ServiceSpecInput } from "../../input/schemas.js";
import { collect } from "../parse.js";

/**
 * docker's --secret / --config value: `NAME` or `source=NAME[,target=T][,mode=0400][,uid=U][,gid=G]`
 * (mode in octal, as docker writes it). The API checks the rest (target, that the object exists).
 */
export function parseFileReference(text: string): FileReferenceInput {
  if (!text.includes("=")) return { source: text };
  const ref: Partial<FileReferenceInput> = {};
  for (const part of text.split(",")) {
    const eq = part.indexOf("=");
    const [k, v] = eq < 0 ? [part, ""] : [part.slice(0, eq), part.slice(eq + 1)];
    if (k === "source" || k === "src") ref.source = v;
    else if (k === "target" || k === "dst" || k === "destination") ref.target = v;
    else if (k === "mode") {
      if (!/^0?[0-7]{1,3}$/.test(v)) throw new InvalidArgumentError(`mode "${v}" is not an octal mode such as 0400`);
      ref.mode = parseInt(v, 8);
    } else if (k === "uid" || k === "gid") ref[k] = v;
    else throw new InvalidArgumentError(`unknown option "${k}" (use source=, target=, mode=, uid=, gid=)`);
  }
  if (!ref.source) throw new InvalidArgumentError(`"${text}" names no source`);
  return ref as FileReferenceInput;
}

const parseAll = (v: string, prev: FileReferenceInput[] | undefined): FileReferenceInput[] => [...(prev ?? []), parseFileReference(v)];

export function addFileFlags(cmd: Command, on: "create" | "update"): Command {
  for (const kind of ["secret", "config"] as const) {
    const form = `${kind === "secret" ? "SECRET" : "CONFIG"}[,target=…,mode=…,uid=…,gid=…]`;
    const where = kind === "secret" ? "/run/secrets/NAME in a container, $BATON_SECRETS_DIR/NAME for a process" : "/NAME in a container, $BATON_CONFIGS_DIR/NAME for a process";
    if (on === "create") cmd.option(`--${kind} <${kind}>`, `give the tasks a ${kind} as a file: ${form} (${where}; repeatable)`, parseAll);
    else {
      cmd.option(`--${kind}-add <${kind}>`, `add or replace a ${kind}: ${form} (repeatable)`, parseAll);
      cmd.option(`--${kind}-rm <name>`, `remove a ${kind} by name or target (repeatable)`, collect);
    }
  }
  return cmd;
}

/** create: `secrets` and `configs` of the body. */
export function fileReferencesFrom(opts: { secret?: FileReferenceInput[]; config?: FileReferenceInput[] }): Pick<ServiceSpecInput, "secrets" | "configs"> {
  return { ...(opts.secret?.length ? { secrets: opts.secret } : {}), ...(opts.config?.length ? { configs: opts.config } : {}) };
}

/** update: --secret-rm (by source or target) then --secret-add (replacing one of the same target); the same for configs. */
export function applyFileFlags(next: ServiceSpecInput, o: Record<string, unknown>): void {
  for (const kind of ["secret", "config"] as const) {
    const field = kind === "secret" ? "secrets" : "configs";
    const rm = new Set((o[`${kind}Rm`] as string[] | undefined) ?? []);
    const add = (o[`${kind}Add`] as FileReferenceInput[] | undefined) ?? [];
    if (!rm.size && !add.length) continue;
    const targetOf = (r: FileReferenceInput): string => r.target ?? r.source;
    const added = new Set(add.map(targetOf));
    const kept = (next[field] ?? []).filter((r) => !rm.has(r.source) && !rm.has(targetOf(r)) && !added.has(targetOf(r)));
    const list = [...kept, ...add];
    if (list.length) next[field] = list;
    else delete next[field];
  }
}
