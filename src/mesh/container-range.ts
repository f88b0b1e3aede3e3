import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Logger } from "../lib/log.js";
import { CONTAINER_RANGE, containerDnsCandidates } from "../model/service-address.js";
import { startDnsResponder, type DnsResponder, type ResolveName } from "./dns.js";

const run = promisify(execFile);

/**
 * Routes the container range to this host (`ip route replace local 198.18.0.0/16 dev lo`): every
 * address in it is then local, as 127.0.0.0/8 is, so the mesh can listen on a VIP's twin and a
 * container's packets to it (sent to its gateway, the host) are delivered here. Needs
 * CAP_NET_ADMIN; without it (and without the route already there) containers get no discovery.
 */
export async function enableContainerRange(log: Logger): Promise<boolean> {
  try {
    await run("ip", ["route", "replace", "local", CONTAINER_RANGE.cidr, "dev", "lo", "table", "local"]);
    return true;
  } catch (err) {
    try {
      const { stdout } = await run("ip", ["route", "show", "table", "local", CONTAINER_RANGE.cidr]);
      if (stdout.includes("local")) return true;
    } catch {
      /* no ip command: reported below */
    }
    log.warn({ err: (err as Error).message.split("\n")[0], range: CONTAINER_RANGE.cidr }, "cannot route the container range to this host (needs root): containers will not reach services by name");
    return false;
  }
}

/**
 * The DNS responder containers use: port 53 (a resolver in a container takes no port) on the
 * first free address of 198.18.0.1 … (one per Baton on a host; others' are taken). `preferred`
 * (the one used before a restart) is tried first: running containers were given that address.
 */
export async function startContainerDns(resolve: ResolveName, log: Logger, preferred?: string): Promise<{ responder: DnsResponder; host: string } | undefined> {
  let lastErr: unknown;
  const candidates = containerDnsCandidates().slice(0, 32);
  for (const host of preferred && candidates.includes(preferred) ? [preferred, ...candidates.filter((c) => c !== preferred)] : candidates) {
    try {
      return { responder: await startDnsResponder({ host, port: 53, resolve, log }), host };
    } catch (err) {
      lastErr = err;
      if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") break;
    }
  }
  log.warn({ err: (lastErr as Error | undefined)?.message }, "DNS responder for containers not started: containers resolve no service names");
  return undefined;
}
