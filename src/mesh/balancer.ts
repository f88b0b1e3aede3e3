import type { BalanceMode } from "./types.js";

/** What the balancer needs to know about a backend; BackendState carries these fields. */
export interface Candidate {
  weight: number;
  /** Open connections / outstanding requests. */
  active: number;
  /** Smooth weighted round robin's running score; owned by the balancer. */
  currentWeight: number;
  /** Passive health: after a failed connect the backend is skipped until this time (ms). */
  ejectedUntil: number;
}

/**
 * Picks the next backend. Pure apart from updating currentWeight (round robin's state lives in
 * the candidates so that a backend leaving the set takes its state with it).
 * Backends with weight 0, in `exclude` (already tried for this request) or ejected are skipped;
 * when only ejected ones remain they are used anyway: a maybe-dead backend beats a certain error.
 */
export function pickBackend<T extends Candidate>(mode: BalanceMode, list: readonly T[], now: number, exclude?: ReadonlySet<T>): T | undefined {
  const healthy = pickAmong(mode, list, (b) => b.weight > 0 && b.ejectedUntil <= now && !exclude?.has(b));
  return healthy ?? pickAmong(mode, list, (b) => b.weight > 0 && !exclude?.has(b));
}

function pickAmong<T extends Candidate>(mode: BalanceMode, list: readonly T[], ok: (b: T) => boolean): T | undefined {
  return mode === "least-connections" ? pickLeast(list, ok) : pickSmooth(list, ok);
}

/**
 * nginx's smooth weighted round robin: every pick adds each weight to its score, takes the
 * highest score and subtracts the total from it. Weights 5,1,1 give a a b a c a a (never a burst
 * of the heavy one), equal weights give plain round robin.
 */
function pickSmooth<T extends Candidate>(list: readonly T[], ok: (b: T) => boolean): T | undefined {
  let best: T | undefined;
  let total = 0;
  for (const b of list) {
    if (!ok(b)) continue;
    b.currentWeight += b.weight;
    total += b.weight;
    if (!best || b.currentWeight > best.currentWeight) best = b;
  }
  if (best) best.currentWeight -= total;
  return best;
}

/**
 * Fewest active relative to weight. Ties go through smooth round robin among the tied ones, so
 * an idle pool (all at 0) still spreads its load instead of always hitting the first backend.
 */
function pickLeast<T extends Candidate>(list: readonly T[], ok: (b: T) => boolean): T | undefined {
  let min = Infinity;
  for (const b of list) if (ok(b) && b.active / b.weight < min) min = b.active / b.weight;
  if (min === Infinity) return undefined;
  return pickSmooth(list, (b) => ok(b) && b.active / b.weight === min);
}
