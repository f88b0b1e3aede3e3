import { createHash, X509Certificate } from "node:crypto";
import { BatonError } from "../lib/errors.js";

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/** RFC 4648 base32, lowercase, no padding: case-insensitive to read aloud and safe in a shell word. */
export function toBase32(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let acc = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(acc << (5 - bits)) & 31];
  return out;
}

/** DER bytes of the first certificate in a PEM string. */
export function pemToDer(pem: string): Buffer {
  try {
    return Buffer.from(new X509Certificate(pem).raw);
  } catch (err) {
    throw new BatonError("VALIDATION_FAILED", "not a PEM X.509 certificate", [], { cause: err });
  }
}

/** SHA-256 of the DER certificate, base32 (52 characters): what a join token pins. */
export function caFingerprint(certPemOrDer: string | Uint8Array): string {
  const der = typeof certPemOrDer === "string" ? pemToDer(certPemOrDer) : certPemOrDer;
  return toBase32(createHash("sha256").update(der).digest());
}
