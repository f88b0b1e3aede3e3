import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * Writes a file through a temporary name and a rename, so a crash never leaves half a key.
 * The mode is set at creation: a private key is never readable by others, not even briefly.
 */
export async function writeFileAtomic(dir: string, name: string, data: string, mode: number): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${name}.${process.pid}.tmp`);
  await writeFile(tmp, data, { mode, flag: "w" });
  await rename(tmp, join(dir, name));
}

/** The file's text, or undefined when it does not exist. */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}
