import type { Command } from "commander";
import { defaultDataDir } from "../lib/paths.js";
import { ApiClient, targetOf } from "./client.js";

/** The API client for the host given by -H / BATON_HOST. */
export function clientFor(cmd: Command): ApiClient {
  const root = cmd.optsWithGlobals() as { host?: string };
  return new ApiClient(targetOf(root.host, defaultDataDir()));
}

/** Runs fn with a client for the command's host (one connection per request: nothing to close). */
export function withClient<T>(cmd: Command, fn: (c: ApiClient) => Promise<T>): Promise<T> {
  return fn(clientFor(cmd));
}
