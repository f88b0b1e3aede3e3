import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { Config } from "../../model/objects.js";
import type { PublicSecret } from "../../secrets/public.js";
import { shortId } from "../../lib/ids.js";
import { BatonError } from "../../lib/errors.js";
import { MAX_SECRET_BYTES } from "../../input/schemas.js";
import { withClient } from "../context.js";
import { printList } from "../output/table.js";
import { collect, parseLabels } from "../parse.js";

/** FILE, or `-` for standard input; refused over 500 KiB before anything is sent. */
function readData(file: string, what: string): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(file === "-" ? 0 : file);
  } catch (err) {
    throw new BatonError("BAD_REQUEST", `cannot read ${file === "-" ? "standard input" : file}: ${(err as Error).message}`);
  }
  if (data.length > MAX_SECRET_BYTES) throw new BatonError("VALIDATION_FAILED", `the ${what} is ${data.length} bytes; the limit is ${MAX_SECRET_BYTES} (500 KiB)`, [{ path: ["data"], problem: `${data.length} bytes is over the limit` }]);
  return data;
}

const ago = (ms: number): string => {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60 ? `${s} seconds ago` : s < 3600 ? `${Math.round(s / 60)} minutes ago` : s < 86400 ? `${Math.round(s / 3600)} hours ago` : `${Math.round(s / 86400)} days ago`;
};

/** `baton secret …` and `baton config …`, as docker's. */
export function registerSecretConfigCommands(program: Command): void {
  for (const kind of ["secret", "config"] as const) {
    const plural = `${kind}s`;
    const group = program.command(kind).description(kind === "secret" ? "Manage secrets (encrypted at rest, never shown; docs/secrets.md)" : "Manage configs (files for a service's tasks; docs/secrets.md)").exitOverride();
    group
      .command("create")
      .description(`Create a ${kind} from FILE, or from standard input with -`)
      .argument("<name>")
      .argument("<file>", "a file, or - for standard input")
      .option("-l, --label <key=value>", `${kind} label (repeatable)`, collect)
      .action(async (name: string, file: string, opts: { label?: string[] }, cmd: Command) =>
        withClient(cmd, async (c) => {
          const data = readData(file, kind);
          const body = { name, data: data.toString("base64"), ...(opts.label ? { labels: parseLabels(opts.label) } : {}) };
          data.fill(0);
          const { id } = await c.call<{ id: string }>("POST", `/v1/${plural}`, body);
          process.stdout.write(`${id}\n`);
        }),
      );
    group
      .command("ls")
      .alias("list")
      .description(`List ${plural}`)
      .option("-q, --quiet", "only ids")
      .option("--format <format>", "table or json (one object per line)")
      .action(async (opts: { quiet?: boolean; format?: string }, cmd: Command) =>
        withClient(cmd, async (c) => {
          const items = await c.call<(PublicSecret | Config)[]>("GET", `/v1/${plural}`);
          printList(items, opts, ["ID", "NAME", "CREATED", "UPDATED"], (i) => [shortId(i.id), i.name, ago(i.createdAt), ago(i.updatedAt)], (i) => i.id);
        }),
      );
    group
      .command("inspect")
      .description(kind === "secret" ? "Show secrets as JSON (metadata only: the data is never shown)" : "Show configs as JSON, with their data (base64)")
      .argument(`<${kind}...>`)
      .action(async (refs: string[], _o: unknown, cmd: Command) =>
        withClient(cmd, async (c) => {
          const out = [];
          for (const r of refs) out.push(await c.call<PublicSecret | Config>("GET", `/v1/${plural}/${encodeURIComponent(r)}`));
          process.stdout.write(JSON.stringify(out, null, 2) + "\n");
        }),
      );
    group
      .command("rm")
      .alias("remove")
      .description(`Remove ${plural} (refused while a service uses one)`)
      .argument(`<${kind}...>`)
      .action(async (refs: string[], _o: unknown, cmd: Command) =>
        withClient(cmd, async (c) => {
          for (const r of refs) {
            await c.call("DELETE", `/v1/${plural}/${encodeURIComponent(r)}`);
            process.stdout.write(`${r}\n`);
          }
        }),
      );
  }
}
