import { readFileSync } from "node:fs";
import Docker from "dockerode";
import { pack } from "tar-stream";

/** The tests' image: busybox-static alone, FROM scratch (there is no registry to pull from). */
export const BUSYBOX_IMAGE = "baton-test/busybox:latest";
const BUSYBOX_BIN = "/bin/busybox";
const APPLETS = ["sh", "httpd", "sleep", "echo", "cat", "ls", "wget", "nc", "true", "false", "env", "kill", "ps", "id", "mkdir", "touch", "head", "dd", "yes", "test", "grep", "hostname", "nslookup"];
/** A page for `httpd -h /www` (the harness's busybox web server). */
const INDEX = "hello from busybox\n";

/**
 * Whether a Docker Engine answers on its socket. Under CI=true a missing engine is a failure
 * (CI installs and starts one); locally the docker tests skip with the reason printed.
 */
export async function dockerOrSkip(): Promise<{ docker: Docker } | { skip: string }> {
  const docker = new Docker({ socketPath: "/var/run/docker.sock" });
  try {
    await Promise.race([docker.ping(), new Promise((_, reject) => setTimeout(() => reject(new Error("no answer in 2 s")), 2000))]);
    return { docker };
  } catch (err) {
    const reason = `no Docker Engine on /var/run/docker.sock (${(err as Error).message}); start dockerd (see .ci/run)`;
    if (process.env.CI === "true") throw new Error(`CI=true and ${reason}`);
    process.stderr.write(`skipping docker tests: ${reason}\n`);
    return { skip: reason };
  }
}

/** Builds `baton-test/busybox:latest` through the Engine API's build endpoint unless the engine has it. Idempotent. */
export async function ensureBusyboxImage(docker: Docker): Promise<string> {
  try {
    await docker.getImage(BUSYBOX_IMAGE).inspect();
    return BUSYBOX_IMAGE;
  } catch {
    /* build it */
  }
  let busybox: Buffer;
  try {
    busybox = readFileSync(BUSYBOX_BIN);
  } catch {
    throw new Error(`${BUSYBOX_BIN} is missing: apt-get install busybox-static (see .ci/run)`);
  }
  const tar = pack();
  tar.entry({ name: "Dockerfile" }, 'FROM scratch\nCOPY rootfs/ /\nCMD ["sh"]\n');
  tar.entry({ name: "rootfs/bin/busybox", mode: 0o755 }, busybox);
  for (const a of APPLETS) if (a !== "busybox") tar.entry({ name: `rootfs/bin/${a}`, type: "symlink", linkname: "busybox" });
  tar.entry({ name: "rootfs/tmp", type: "directory", mode: 0o1777 });
  tar.entry({ name: "rootfs/www/index.html" }, INDEX);
  tar.entry({ name: "rootfs/etc/passwd" }, "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n");
  tar.entry({ name: "rootfs/etc/group" }, "root:x:0:\nnogroup:x:65534:\n");
  tar.finalize();
  await build(docker, tar, BUSYBOX_IMAGE);
  return BUSYBOX_IMAGE;
}

/**
 * `baton-test/busybox-health:latest`: the busybox image with a HEALTHCHECK (healthy once
 * /tmp/healthy exists; checked every 200 ms, 2 failures = unhealthy). Built FROM the busybox
 * image through the build endpoint, once. Idempotent.
 */
export const HEALTHCHECK_IMAGE = "baton-test/busybox-health:latest";

export async function ensureHealthcheckImage(docker: Docker): Promise<string> {
  try {
    await docker.getImage(HEALTHCHECK_IMAGE).inspect();
    return HEALTHCHECK_IMAGE;
  } catch {
    /* build it */
  }
  await ensureBusyboxImage(docker);
  const tar = pack();
  tar.entry({ name: "Dockerfile" }, `FROM ${BUSYBOX_IMAGE}\nHEALTHCHECK --interval=200ms --timeout=2s --retries=2 CMD test -f /tmp/healthy\n`);
  tar.finalize();
  await build(docker, tar, HEALTHCHECK_IMAGE);
  return HEALTHCHECK_IMAGE;
}

/**
 * An image FROM the busybox image with more Dockerfile lines (CMD, ENV, …), e.g. a test's
 * stand-in for an application image. Rebuilt each call (the build cache makes a repeat cheap).
 */
export async function buildFromBusybox(docker: Docker, tag: string, lines: readonly string[]): Promise<string> {
  await ensureBusyboxImage(docker);
  const tar = pack();
  tar.entry({ name: "Dockerfile" }, [`FROM ${BUSYBOX_IMAGE}`, ...lines, ""].join("\n"));
  tar.finalize();
  await build(docker, tar, tag);
  return tag;
}

async function build(docker: Docker, tar: ReturnType<typeof pack>, tag: string): Promise<void> {
  const stream = await docker.buildImage(tar as unknown as NodeJS.ReadableStream, { t: tag, rm: true });
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) => {
      const failed = err?.message ?? out.find((o) => o.error)?.error;
      return failed ? reject(new Error(`building ${tag}: ${failed}`)) : resolve();
    }),
  );
}
