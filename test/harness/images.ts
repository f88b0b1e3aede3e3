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
  const stream = await docker.buildImage(tar as unknown as NodeJS.ReadableStream, { t: BUSYBOX_IMAGE, rm: true });
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) => {
      const failed = err?.message ?? out.find((o) => o.error)?.error;
      return failed ? reject(new Error(`building ${BUSYBOX_IMAGE}: ${failed}`)) : resolve();
    }),
  );
  return BUSYBOX_IMAGE;
}
