import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Clock } from "../lib/clock.js";
import { BatonError } from "../lib/errors.js";
import { caFingerprint, toBase32 } from "./fingerprint.js";
import { seal, unseal } from "./seal.js";
import type { NodeRole } from "./role.js";

/**
 * A join token: `BTN-1-<ca fingerprint>-<secret>`.
 * - `BTN-1`: prefix and format version.
 * - fingerprint: SHA-256 of the cluster CA certificate's DER, base32 lowercase without padding
 *   (52 characters); the joining node compares it with the CA it is shown before sending anything.
 * - secret: 128 random bits, base32 (26 characters); worker and manager tokens have different
 *   secrets, and the role a node gets is the role of the token whose secret it presented.
 */
export interface ParsedJoinToken {
  version: 1;
  caFingerprint: string;
  secret: string;
}

const SECRET_BYTES = 16;
const tokenPattern = /^BTN-1-([a-z2-7]{52})-([a-z2-7]{26})$/;

function badToken(problem: string): BatonError {
  return new BatonError("VALIDATION_FAILED", `invalid join token: ${problem}`, [{ path: ["token"], problem }]);
}

export function parseJoinToken(token: string): ParsedJoinToken {
  const m = tokenPattern.exec(token.trim());
  if (!m) throw badToken("expected BTN-1-<52 base32 characters>-<26 base32 characters>");
  return { version: 1, caFingerprint: m[1] ?? "", secret: m[2] ?? "" };
}

export const formatJoinToken = (fingerprint: string, secret: string): string => `BTN-1-${fingerprint}-${secret}`;

/**
 * What a joining node does with the CA certificate a manager showed it, before trusting the
 * manager or sending its secret: the certificate must be the one the token pins.
 */
export function verifyCaMatchesToken(caCertPem: string, token: string): void {
  const { caFingerprint: pinned } = parseJoinToken(token);
  const shown = caFingerprint(caCertPem);
  if (!timingSafeEqual(Buffer.from(shown), Buffer.from(pinned)))
    throw new BatonError("UNAUTHORIZED", "the manager's CA does not match the join token: wrong cluster, or someone in between", [
      { path: ["token"], problem: "CA fingerprint mismatch" },
    ]);
}

/**
 * The stored form of one role's token: never the secret itself. The secret has 128 random
 * bits, so a salted SHA-256 (HMAC keyed by the salt) is enough: nobody can search 2^128
 * candidates, and a password KDF such as scrypt would only add ~50 ms of CPU to every join
 * attempt, which an unauthenticated caller could use to load the manager.
 */
export interface StoredJoinToken {
  salt: string;
  hash: string;
  /** ms since the epoch, on the manager's clock. */
  createdAt: number;
  /** The plain token sealed with the cluster's sealing key (seal.ts), so `join-token` can print it again. */
  sealed: string;
}

export type JoinTokensJson = Record<NodeRole, StoredJoinToken>;

function hashSecret(salt: string, secret: string): Buffer {
  return createHmac("sha256", Buffer.from(salt, "base64")).update(secret).digest();
}

function newStoredToken(deps: JoinTokensDeps, fingerprint: string): { stored: StoredJoinToken; secret: string } {
  const secret = toBase32(randomBytes(SECRET_BYTES));
  const salt = randomBytes(16).toString("base64");
  const sealed = seal(deps.sealKey, formatJoinToken(fingerprint, secret));
  return { secret, stored: { salt, hash: hashSecret(salt, secret).toString("base64"), createdAt: deps.clock.now(), sealed } };
}

export interface JoinTokensDeps {
  clock: Clock;
  /** The cluster CA certificate whose fingerprint every token carries. */
  caCertPem: string;
  /** Seals the plain tokens in the stored form (seal.ts sealingKey). */
  sealKey: Buffer;
}

/**
 * The manager's side of the worker and manager join tokens. Plain tokens exist only in what
 * `create` and `rotate` return; the lead stores `toJSON()`.
 */
export class JoinTokens {
  readonly caFingerprint: string;

  private constructor(
    private readonly deps: JoinTokensDeps,
    private readonly stored: JoinTokensJson,
  ) {
    this.caFingerprint = caFingerprint(deps.caCertPem);
  }

  /** New tokens for both roles (at `baton init`); the plain tokens are returned once. */
  static create(deps: JoinTokensDeps): { tokens: JoinTokens; plain: Record<NodeRole, string> } {
    const fp = caFingerprint(deps.caCertPem);
    const worker = newStoredToken(deps, fp);
    const manager = newStoredToken(deps, fp);
    const tokens = new JoinTokens(deps, { worker: worker.stored, manager: manager.stored });
    return {
      tokens,
      plain: { worker: formatJoinToken(fp, worker.secret), manager: formatJoinToken(fp, manager.secret) },
    };
  }

  static fromJSON(json: JoinTokensJson, deps: JoinTokensDeps): JoinTokens {
    return new JoinTokens(deps, { worker: { ...json.worker }, manager: { ...json.manager } });
  }

  /** A new secret for one role; the old token stops working for new joins at once (joined nodes keep their certificates). */
  rotate(role: NodeRole): string {
    const next = newStoredToken(this.deps, this.caFingerprint);
    this.stored[role] = next.stored;
    return formatJoinToken(this.caFingerprint, next.secret);
  }

  /** The current plain token of a role (what `baton join-token` prints). */
  plain(role: NodeRole): string {
    return unseal(this.deps.sealKey, this.stored[role].sealed);
  }

  /**
   * The role a token grants. Refused: a malformed token, a token of another cluster, a wrong
   * or rotated secret, and (with `requestedRole`) a token of a lesser role. Both roles' hashes
   * are always compared, in constant time, so timing tells nothing about which one was close.
   */
  authorize(token: string, requestedRole?: NodeRole): NodeRole {
    const parsed = parseJoinToken(token);
    if (!timingSafeEqual(Buffer.from(parsed.caFingerprint), Buffer.from(this.caFingerprint)))
      throw new BatonError("UNAUTHORIZED", "join token is for another cluster (CA fingerprint mismatch)", [{ path: ["token"], problem: "CA fingerprint mismatch" }]);
    let granted: NodeRole | undefined;
    for (const role of ["worker", "manager"] as const) {
      const s = this.stored[role];
      if (timingSafeEqual(hashSecret(s.salt, parsed.secret), Buffer.from(s.hash, "base64"))) granted = role;
    }
    // Wrong and rotated secrets get the same answer: a caller learns nothing about old tokens.
    if (!granted) throw new BatonError("UNAUTHORIZED", "join token is not valid (wrong or rotated)", [{ path: ["token"], problem: "rejected" }]);
    if (requestedRole === "manager" && granted !== "manager")
      throw new BatonError("FORBIDDEN", "a worker join token cannot make a manager", [{ path: ["role"], problem: "requires the manager token" }]);
    return granted;
  }

  toJSON(): JoinTokensJson {
    return { worker: { ...this.stored.worker }, manager: { ...this.stored.manager } };
  }
}
