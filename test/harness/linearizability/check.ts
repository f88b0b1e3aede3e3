// checkHistory: split the history by object (P-compositionality: a history is linearizable iff
// each object's sub-history is), search each part, and on a violation narrow it down to the
// earliest moment it became inevitable, with the operations around it.
import type { Model, Operation } from "./history.js";
import { searchLinearization, type SearchOptions } from "./search.js";

export interface Violation<Op extends Operation> {
  /** The object (partition) whose operations cannot be ordered. */
  key: string;
  /**
   * The operation whose answer made the history impossible: the shortest prefix of the history
   * (cut at this operation's return; operations still running then count as unanswered) already
   * has no linearization.
   */
  culprit: Op;
  /** Operations that overlap the culprit in time (any of them could have come just before it). */
  concurrent: Op[];
  /** The end of the longest valid order found in that prefix (the context of the violation). */
  orderedTail: Op[];
  /** How many of the prefix's operations that order covers, of how many. */
  ordered: number;
  total: number;
  /** The possible states at the end of that order. */
  states: string[];
  /** Each operation that could have come next, and why the model refused it there. */
  refused: { op: Op; reason: string }[];
}

export type CheckResult<Op extends Operation> =
  | { ok: true; partitions: number; operations: number }
  | {
      ok: false;
      partitions: number;
      operations: number;
      violations: Violation<Op>[];
      unordered: { op: Op; problem: string }[];
      /** Partitions the search could not decide within its step budget (not proven wrong, not proven right). */
      undecided: string[];
      text: string;
    };

export interface CheckOptions extends SearchOptions {
  /** How many operations of the valid order to show before the violation. @default 6 */
  context?: number;
}

export function checkHistory<S, Op extends Operation>(model: Model<S, Op>, history: readonly Op[], opts: CheckOptions = {}): CheckResult<Op> {
  const parts = new Map<string, Op[]>();
  for (const op of history) {
    const k = model.partitionKey(op);
    let p = parts.get(k);
    if (!p) parts.set(k, (p = []));
    p.push(op);
  }
  const violations: Violation<Op>[] = [];
  const unordered: { op: Op; problem: string }[] = [];
  const undecided: string[] = [];
  for (const [key, ops] of parts) {
    for (const op of ops) {
      if (!model.isUnordered?.(op)) continue;
      const problem = model.checkUnordered?.(op, ops);
      if (problem) unordered.push({ op, problem });
    }
    const ordered = ops.filter((op) => !model.isUnordered?.(op) && !(op.outcome === "timeout" && model.isReadOnly(op)));
    const r = searchLinearization(model, ordered, opts);
    if (r.ok === undefined) undecided.push(key);
    else if (!r.ok) violations.push(narrow(model, key, ordered, opts));
  }
  const base = { partitions: parts.size, operations: history.length };
  if (!violations.length && !unordered.length && !undecided.length) return { ok: true, ...base };
  const text = [formatFailure(model, violations, unordered), ...undecided.map((k) => `undecided: ${k} (the search gave up after ${opts.maxSteps ?? "2000000"} steps; too many unanswered operations on one object)`)].filter(Boolean).join("\n");
  return { ok: false, ...base, violations, unordered, undecided, text };
}

/**
 * The history as it stood at time `t`: operations invoked by then; those that had not returned
 * yet become unanswered (a read then carries no information and goes).
 */
function prefixAt<Op extends Operation>(isReadOnly: (op: Op) => boolean, ops: readonly Op[], t: number): Op[] {
  const out: Op[] = [];
  for (const op of ops) {
    if (op.invokeAt > t) continue;
    if (op.outcome !== "timeout" && op.returnAt !== undefined && op.returnAt <= t) out.push(op);
    else if (!isReadOnly(op)) out.push({ ...op, outcome: "timeout", returnAt: undefined, output: undefined, error: op.error ?? "answered only after this point" });
  }
  return out;
}

/**
 * Binary search for the earliest return after which the history has no linearization. Sound
 * because linearizability is prefix-closed: if a prefix has no valid order, no longer history does.
 */
function narrow<S, Op extends Operation>(model: Model<S, Op>, key: string, ops: readonly Op[], opts: CheckOptions): Violation<Op> {
  const context = opts.context ?? 6;
  const returns = ops.filter((o) => o.outcome !== "timeout" && o.returnAt !== undefined).sort((a, b) => a.returnAt! - b.returnAt!);
  const m = (op: Op): boolean => model.isReadOnly(op);
  let lo = 0;
  let hi = returns.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    // An undecided prefix counts as passing: the cut found is then a proven failure, perhaps not the earliest.
    if (searchLinearization(model, prefixAt(m, ops, returns[mid]!.returnAt!), opts).ok !== false) lo = mid + 1;
    else hi = mid;
  }
  // The whole history failed, so the last cut fails (an unanswered write can always go last):
  // `lo` is the first failing cut.
  const culprit = returns[lo] ?? ops[0]!;
  const prefix = returns.length ? prefixAt(m, ops, culprit.returnAt!) : [...ops];
  const r = searchLinearization(model, prefix, opts);
  const done = new Set(r.longest);
  const orderedTail = r.longest.slice(-context).map((i) => prefix[i]!);
  // Candidates for the next step: the pending operations invoked before the earliest pending return.
  const pending = prefix.map((op, i) => ({ op, i })).filter(({ i }) => !done.has(i));
  const firstReturn = Math.min(...pending.map(({ op }) => (op.outcome === "timeout" || op.returnAt === undefined ? Infinity : op.returnAt)));
  const refused: { op: Op; reason: string }[] = [];
  for (const { op } of pending.filter(({ op }) => op.invokeAt <= firstReturn)) {
    const fits = r.statesAfterLongest.some((s) => model.step(s, op).length > 0);
    const reason = fits ? "possible here, but no order of the remaining operations works after it" : r.statesAfterLongest.map((s) => model.explainStep(s, op)).join("; or ");
    refused.push({ op, reason });
  }
  const end = culprit.returnAt ?? Infinity;
  const concurrent = ops.filter((o) => o !== culprit && o.invokeAt <= end && (o.outcome === "timeout" || o.returnAt === undefined || o.returnAt >= culprit.invokeAt));
  return { key, culprit, concurrent, orderedTail, ordered: r.longest.length, total: prefix.length, states: r.statesAfterLongest.map((s) => model.describeState(s)), refused };
}

const ms = (t: number | undefined): string => (t === undefined ? "∞" : t.toFixed(3));
const when = (op: Operation): string => `[${ms(op.invokeAt)} → ${op.outcome === "timeout" ? "no answer" : ms(op.returnAt)}]`;

function formatFailure<S, Op extends Operation>(model: Model<S, Op>, violations: Violation<Op>[], unordered: { op: Op; problem: string }[]): string {
  const L: string[] = [];
  const line = (op: Op): string => `${model.describeOp(op)}  ${when(op)}`;
  for (const v of violations) {
    L.push(`not linearizable: ${v.key}`);
    L.push(`  the history up to the answer of this operation has no valid order (${v.ordered} of its ${v.total} operations could be ordered):`);
    L.push(`    ${line(v.culprit)}`);
    L.push(`  a valid order up to there ends with:`);
    for (const op of v.orderedTail) L.push(`    ${line(op)}`);
    if (!v.orderedTail.length) L.push("    (nothing: not even the first operation fits)");
    L.push(`  state after it: ${v.states.join(" | or | ")}`);
    L.push(`  none of these can come next:`);
    for (const { op, reason } of v.refused) L.push(`    ${line(op)}: ${reason}`);
    if (v.concurrent.length) {
      L.push(`  operations overlapping the culprit in time:`);
      for (const op of v.concurrent) L.push(`    ${line(op)}`);
    }
  }
  for (const { op, problem } of unordered) L.push(`invalid stale read: ${line(op)}: ${problem}`);
  return L.join("\n");
}
