import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";

/** 25 lowercase alphanumerics, like swarmkit's ids; the first 12 are shown in tables. */
export function newId(): string {
  const bytes = randomBytes(25);
  let out = "";
  for (const b of bytes) out += ALPHABET[b % 36];
  return out;
}

export const shortId = (id: string): string => id.slice(0, 12);
