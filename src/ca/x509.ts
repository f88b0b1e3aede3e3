// @peculiar/x509 resolves its ASN.1 types through tsyringe, which needs the Reflect metadata API
// at load time; this module is the only place the library is imported so the polyfill always
// comes first. WebCrypto is Node's own (globalThis.crypto), which the library picks up by itself.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import type { webcrypto } from "node:crypto";

/** WebCrypto types from Node (the project compiles without the DOM lib). */
export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
export type EcKeyAlgorithm = webcrypto.EcKeyAlgorithm;

export { x509 };

/** ECDSA over P-256 with SHA-256: every key and signature of the cluster. */
export const keyAlgorithm = { name: "ECDSA", namedCurve: "P-256" } as const;
export const signingAlgorithm = { name: "ECDSA", hash: "SHA-256" } as const;

export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(keyAlgorithm, true, ["sign", "verify"]);
}

export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

/** Imports a PKCS#8 PEM key and derives its public half (WebCrypto has no direct way). */
export async function importKeyPairPem(pem: string): Promise<CryptoKeyPair> {
  const der = x509.PemConverter.decodeFirst(pem);
  const privateKey = await crypto.subtle.importKey("pkcs8", der, keyAlgorithm, true, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  delete jwk.d;
  jwk.key_ops = ["verify"];
  const publicKey = await crypto.subtle.importKey("jwk", jwk, keyAlgorithm, true, ["verify"]);
  return { privateKey, publicKey };
}

/** A positive 128-bit serial (RFC 5280 allows up to 20 octets; the top bit is cleared so DER needs no sign byte). */
export function newSerialNumber(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0] ?? 0) & 0x7f;
  return Buffer.from(b).toString("hex");
}
