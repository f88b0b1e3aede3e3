import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { readOptional, writeFileAtomic } from "../ca/files.js";
import { seal, sealingKey, unseal } from "../ca/seal.js";
import { BatonError } from "../lib/errors.js";
import { CLUSTER_ID } from "../model/objects.js";
import type { Store } from "../store/store.js";
import { DATA_KEY_BYTES, openData, sealData } from "./cipher.js";

/** `baton up`'s data key file, beside (never inside) the store. */
export const DATA_KEY_FILE = "secrets.key";

/**
 * What the manager seals and opens secrets with. The key itself stays in this closure: it is
 * never logged, never in the store in the clear, never sent anywhere.
 */
export interface SecretBox {
  seal(id: string, plain: Buffer): string;
  open(id: string, sealed: string): Buffer;
}

export function secretBox(key: Buffer): SecretBox {
  if (key.length !== DATA_KEY_BYTES) throw new BatonError("INTERNAL", `a secrets data key has ${DATA_KEY_BYTES} bytes, not ${key.length}`);
  return { seal: (id, plain) => sealData(key, id, plain), open: (id, sealed) => openData(key, id, sealed) };
}

/**
 * A cluster manager's data key: random, made once, kept in the cluster record sealed with a key
 * derived from the CA key (HKDF, ca/seal.ts). Whoever reads the store alone gets ciphertext; a
 * manager holding the CA key opens it, so every such manager uses the same key.
 */
export async function openClusterDataKey(store: Store, caKeyPem: string, dataDir: string): Promise<SecretBox> {
  const kek = sealingKey(caKeyPem, "secrets-data-key");
  const record = store.view((tx) => tx.get("clusters", CLUSTER_ID));
  if (!record) throw new BatonError("INTERNAL", "no cluster record: the secrets data key is made after the CA");
  if (record.secretsKey) return secretBox(Buffer.from(unseal(kek, record.secretsKey), "base64"));
  // `baton init` on a `baton up` data dir: its secrets were sealed with D/secrets.key; keep that key.
  const local = await readLocalKey(dataDir);
  const key = local ?? randomBytes(DATA_KEY_BYTES);
  const stored = await store.update((tx) => {
    const cur = tx.get("clusters", CLUSTER_ID)!;
    // Another manager made it meanwhile: use theirs (a second key would orphan their secrets).
    if (cur.secretsKey) return cur.secretsKey;
    tx.update("clusters", { ...cur, secretsKey: seal(kek, key.toString("base64")) });
    return undefined;
  });
  return secretBox(stored ? Buffer.from(unseal(kek, stored), "base64") : key);
}

/**
 * `baton up`'s data key (no CA there): a random key in `D/secrets.key`, mode 0600, written before
 * any secret is sealed with it. The store file alone gives ciphertext; the data dir gives all.
 */
export async function openLocalDataKey(dataDir: string): Promise<SecretBox> {
  const existing = await readLocalKey(dataDir);
  if (existing) return secretBox(existing);
  const key = randomBytes(DATA_KEY_BYTES);
  await writeFileAtomic(dataDir, DATA_KEY_FILE, key.toString("base64") + "\n", 0o600);
  return secretBox(key);
}

async function readLocalKey(dataDir: string): Promise<Buffer | undefined> {
  const text = await readOptional(join(dataDir, DATA_KEY_FILE));
  if (text === undefined) return undefined;
  const key = Buffer.from(text.trim(), "base64");
  if (key.length !== DATA_KEY_BYTES) throw new BatonError("VALIDATION_FAILED", `${join(dataDir, DATA_KEY_FILE)} is not a secrets data key (${key.length} bytes): restore it from a backup`);
  return key;
}
