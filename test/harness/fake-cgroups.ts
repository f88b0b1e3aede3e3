import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Writes control files into a directory (made when missing), as the kernel does for a new cgroup. */
export function writeCgroupFiles(dir: string, entries: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(entries)) writeFileSync(join(dir, name), text);
}

const V1_MEMORY = { "memory.limit_in_bytes": "9223372036854771712\n" };
const V1_CPU = { "cpu.cfs_quota_us": "-1\n", "cpu.cfs_period_us": "100000\n" };

/**
 * A temp dir laid out like a cgroup v1 (hybrid) /sys/fs/cgroup, as on our CI machines: memory
 * and cpu hierarchies (cpu optional), Baton's parent made, an empty unified mount beside them.
 */
export function fakeV1Root(opts: { memsw?: boolean; cpu?: boolean } = {}): string {
  const root = mkdtempSync(join(tmpdir(), "baton-cg1-"));
  const memory = { ...V1_MEMORY, ...(opts.memsw ? { "memory.memsw.limit_in_bytes": "9223372036854771712\n" } : {}) };
  writeCgroupFiles(join(root, "memory"), memory);
  writeCgroupFiles(join(root, "memory", "baton"), memory);
  if (opts.cpu !== false) {
    writeCgroupFiles(join(root, "cpu"), V1_CPU);
    writeCgroupFiles(join(root, "cpu", "baton"), V1_CPU);
  }
  writeCgroupFiles(join(root, "unified"), { "cgroup.controllers": "" });
  return root;
}

/** A temp dir laid out like a cgroup v2 (unified) /sys/fs/cgroup offering these controllers. */
export function fakeV2Root(controllers = "cpuset cpu io memory pids"): string {
  const root = mkdtempSync(join(tmpdir(), "baton-cg2-"));
  writeCgroupFiles(root, { "cgroup.controllers": `${controllers}\n`, "cgroup.subtree_control": "" });
  return root;
}
