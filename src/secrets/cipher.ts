import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { BatonError } from "../lib/errors.js";

/** Bytes of a data key: AES-256. */
export const DATA_KEY_BYTES = 32;

/**
 * Seals a secret's data with AES-256-GCM under the data key. The secret's id is the additional
 * authenticated data: a ciphertext copied onto another secret in the store does not open.
 * The result is iv.tag.ciphertext in base64url.
 */
export function sealData(key: Buffer, id: string, plain: Buffer): string {
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", key, iv);
  c.setAAD(Buffer.from(`secret:${id}`));
  const data = Buffer.concat([c.update(plain), c.final()]);
  return [iv, c.getAuthTag(), data].map((b) => b.toString("base64url")).join(".");
}

export function openData(key: Buffer, id: string, sealed: string): Buffer {
  try {
    const [iv, tag, data] = sealed.split(".").map((p) => Buffer.from(p, "base64url"));
    const d = createDecipheriv("aes-256-gcm", key, iv!);
    d.setAAD(Buffer.from(`secret:${id}`));
    d.setAuthTag(tag!);
    return Buffer.concat([d.update(data!), d.final()]);
  } catch (err) {
    // Never the data, never the key: only which secret failed.
    throw new BatonError("INTERNAL", `secret ${id} cannot be opened with this manager's data key (another cluster's store, or a tampered record)`, [], { cause: err });
  }
}
