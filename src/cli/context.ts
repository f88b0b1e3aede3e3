import type { Command } from "commander";
import { defaultDataDir } from "../lib/paths.js";
import { ApiClient, socketPathOf } from "./client.js";

/** The API client for the host given by -H / BATON_HOST. */
export function clientFor(cmd: Command): ApiClient {
  const root = cmd.optsWithGlobals() as { host?: string };
  return new ApiClient(socketPathOf(root.host, defaultDataDir()));
}

/** Runs fn with a client and always closes it. */
export async function withClient<T>(cmd: Command, fn: (c: ApiClient) => Promise<T>): Promise<T> {
  const c = clientFor(cmd);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}
