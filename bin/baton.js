#!/usr/bin/env node
import { main } from "../dist/cli/main.js";

// `baton service ps web | head -1` closes stdout early: that is not an error.
process.stdout.on("error", (err) => {
  if (err.code === "EPIPE") process.exit(0);
  throw err;
});
await main(process.argv);
