import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { BatonError } from "../lib/errors.js";

/**
 * A key for sealing small secrets of the cluster record (the plain join tokens), derived from
 * the CA's private key: whoever can read the store but not the CA key learns nothing, and the
 * managers that hold the CA key need no second secret.
 */
export function sealingKey(caKeyPem: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync("sha256", Buffer.from(caKeyPem), Buffer.from("baton-seal"), Buffer.from(purpose), 32));
}

/** AES-256-GCM; the result is iv.tag.ciphertext in base64url. */
export function seal(key: Buffer, plain: string): string {
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", key, iv);
  const data = Buffer.concat([c.update(plain, "utf8"), c.final()]);
  return [iv, c.getAuthTag(), data].map((b) => b.toString("base64url")).join(".");
}

export function unseal(key: Buffer, sealed: string): string {
  try {
    const [iv, tag, data] = sealed.split(".").map((p) => Buffer.from(p, "base64url"));
    const d = createDecipheriv("aes-256-gcm", key, iv!);
    d.setAuthTag(tag!);
    return Buffer.concat([d.update(data!), d.final()]).toString("utf8");
  } catch (err) {
    throw new BatonError("INTERNAL", "a sealed value of the cluster record cannot be opened with this CA key", [], { cause: err });
  }
}
