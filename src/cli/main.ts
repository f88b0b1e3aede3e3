import { Command, CommanderError } from "commander";
import { BatonError, formatPath } from "../lib/errors.js";
import { registerServiceCreate } from "./commands/service-create.js";
import { registerServiceCommands } from "./commands/service-misc.js";
import { registerServiceUpdate } from "./commands/service-update.js";
import { registerNodeCommands } from "./commands/node.js";
import { registerNetworkCommands, registerVolumeCommands } from "./commands/network.js";
import { registerEvents } from "./commands/events.js";
import { registerSecretConfigCommands } from "./commands/secret-config.js";
import { registerStats } from "./commands/stats.js";
import { registerUpDown } from "./commands/up-down.js";
import { registerClusterCommands } from "./commands/cluster.js";
import { registerStackCommands } from "./commands/stack.js";
import { registerHaCommands } from "./commands/ha.js";
import { BATON_VERSION } from "../lib/version.js";

export function buildProgram(): Command {
  const program = new Command("baton")
    .description("Baton runs services as replicated tasks, keeps them at the declared state, heals and scales them")
    .version(BATON_VERSION)
    .option("-H, --host <host>", "API to talk to: unix:///path/baton.sock or tcp://MANAGER:4242 (default $BATON_HOST, else the default data dir's socket)")
    .enablePositionalOptions()
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  registerUpDown(program);
  registerClusterCommands(program);
  registerHaCommands(program);
  const service = program.command("service").description("Manage services").exitOverride();
  registerServiceCreate(service);
  registerServiceCommands(service);
  registerServiceUpdate(service);
  registerNodeCommands(program.command("node").description("Manage nodes").exitOverride());
  registerStackCommands(program.command("stack").description("Manage stacks: services, networks, volumes, secrets and configs from compose files").exitOverride());
  registerNetworkCommands(program.command("network").description("Manage networks").exitOverride());
  registerVolumeCommands(program.command("volume").description("Manage volumes").exitOverride());
  registerEvents(program);
  registerSecretConfigCommands(program);
  registerStats(program);
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program)) c.exitOverride();
  return program;
}

/** One-line errors and a non-zero exit code; field problems one per line under the message. */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    if (err instanceof BatonError) {
      process.stderr.write(`Error: ${err.message}\n`);
      for (const f of err.fields.slice(1)) process.stderr.write(`  ${formatPath(f.path)}: ${f.problem}\n`);
      process.exitCode = 1;
      return;
    }
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
