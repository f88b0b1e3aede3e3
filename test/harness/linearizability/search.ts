// Wing & Gong's search for a linearization, with Lowe's just-in-time linearization and
// memoization (the algorithm Porcupine implements): walk the history's call/return events in
// time order; at a call, try to apply that operation now ("lift" it out of the list); at a
// return whose call is not yet applied, no order of the remaining operations can work from
// here, so undo the last choice. A (set of applied operations, model state) pair seen before
// leads nowhere new and is skipped: that cache is what keeps the search from being exponential
// on ordinary histories.
import type { Model, Operation } from "./history.js";

interface Entry {
  isCall: boolean;
  /** Index of the operation in the partition. */
  id: number;
  time: number;
  /** The call's return entry (calls only). */
  match?: Entry;
  prev: Entry | undefined;
  next: Entry | undefined;
}

/** The set of states the model may be in (a nondeterministic model forks). */
interface StateSet<S> {
  states: S[];
  key: string;
}

export interface SearchResult<S> {
  /** undefined: the step budget ran out before an answer (see SearchOptions.maxSteps). */
  ok: boolean | undefined;
  /** The longest order found (indexes into the operations); all of them when ok. */
  longest: number[];
  /** The possible states after `longest`. */
  statesAfterLongest: S[];
}

export interface SearchOptions {
  /**
   * Give up (ok: undefined) after this many steps. Proving that no order exists means visiting
   * every reachable (applied set, state) pair, and each unanswered write that stays possible
   * doubles them: a failing history with dozens of timeouts on one object cannot be decided.
   * @default 2_000_000
   */
  maxSteps?: number;
}

/** Whether `ops` (one partition, unordered operations already removed) is linearizable. */
export function searchLinearization<S, Op extends Operation>(model: Model<S, Op>, ops: readonly Op[], opts: SearchOptions = {}): SearchResult<S> {
  const maxSteps = opts.maxSteps ?? 2_000_000;
  let steps = 0;
  const head = buildEntries(ops);
  const init = toSet(model, [model.init()]);
  const words = Math.ceil(ops.length / 32) || 1;
  const applied = new Uint32Array(words);
  const seen = new Set<string>();
  // forced: a spent operation ordered at once; undoing it is no choice to revisit.
  const stack: { entry: Entry; before: StateSet<S>; forced: boolean }[] = [];
  let state = init;
  let longest: number[] = [];
  let statesAfterLongest = init.states;
  let entry = head.next;

  while (head.next !== undefined) {
    if (++steps > maxSteps) return { ok: undefined, longest, statesAfterLongest };
    if (!entry) throw new Error("linearizability search: ran past the end of the history (a bug in the checker)");
    if (entry.isCall) {
      const op = ops[entry.id]!;
      const forced = op.outcome === "timeout" && model.isSpent !== undefined && state.states.every((s) => model.isSpent!(s, op));
      const next = stepSet(model, state, op);
      let moved = false;
      if (next) {
        setBit(applied, entry.id);
        const key = `${bitsKey(applied)}|${next.key}`;
        if (!seen.has(key)) {
          seen.add(key);
          stack.push({ entry, before: state, forced });
          state = next;
          lift(entry);
          moved = true;
          if (stack.length > longest.length) {
            longest = stack.map((s) => s.entry.id);
            statesAfterLongest = state.states;
          }
          entry = head.next;
        } else {
          clearBit(applied, entry.id);
        }
      }
      if (!moved) entry = entry.next;
    } else {
      // A return whose call is still pending: undo the most recent choice and try the next one
      // (undoing forced steps on the way: ordering them later would change nothing).
      let top = stack.pop();
      while (top?.forced) {
        state = top.before;
        clearBit(applied, top.entry.id);
        unlift(top.entry);
        top = stack.pop();
      }
      if (!top) return { ok: false, longest, statesAfterLongest };
      state = top.before;
      clearBit(applied, top.entry.id);
      unlift(top.entry);
      entry = top.entry.next;
    }
  }
  return { ok: true, longest, statesAfterLongest };
}

function buildEntries(ops: readonly Operation[]): Entry {
  const events: Entry[] = [];
  ops.forEach((op, id) => {
    const call: Entry = { isCall: true, id, time: op.invokeAt, prev: undefined, next: undefined };
    // A timeout never returned: it may take effect at any later moment, or never (placed last).
    const ret: Entry = { isCall: false, id, time: op.outcome === "timeout" || op.returnAt === undefined ? Infinity : op.returnAt, prev: undefined, next: undefined };
    call.match = ret;
    events.push(call, ret);
  });
  // Same instant: calls first, so that touching operations count as concurrent (the permissive
  // reading; a real-time order needs a strict gap).
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.id - b.id : a.isCall ? -1 : 1));
  const head: Entry = { isCall: false, id: -1, time: -Infinity, prev: undefined, next: undefined };
  let last = head;
  for (const e of events) {
    last.next = e;
    e.prev = last;
    last = e;
  }
  return head;
}

/** Removes a call and its return from the list (the operation is applied). */
function lift(call: Entry): void {
  call.prev!.next = call.next;
  if (call.next) call.next.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next) ret.next.prev = ret.prev;
}

/** Puts them back, in the reverse order of lift. */
function unlift(call: Entry): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next) ret.next.prev = ret;
  call.prev!.next = call;
  if (call.next) call.next.prev = call;
}

function stepSet<S, Op extends Operation>(model: Model<S, Op>, set: StateSet<S>, op: Op): StateSet<S> | undefined {
  const out: S[] = [];
  for (const s of set.states) out.push(...model.step(s, op));
  return out.length ? toSet(model, out) : undefined;
}

function toSet<S, Op extends Operation>(model: Model<S, Op>, states: S[]): StateSet<S> {
  const byKey = new Map<string, S>();
  for (const s of states) byKey.set(model.stateKey(s), s);
  const keys = [...byKey.keys()].sort();
  return { states: keys.map((k) => byKey.get(k)!), key: keys.join("\u0001") };
}

const setBit = (bits: Uint32Array, i: number): void => {
  bits[i >>> 5]! |= 1 << (i & 31);
};
const clearBit = (bits: Uint32Array, i: number): void => {
  bits[i >>> 5]! &= ~(1 << (i & 31));
};
/** The applied set as a short string: two UTF-16 code units per 32-bit word. */
function bitsKey(bits: Uint32Array): string {
  let s = "";
  for (const w of bits) s += String.fromCharCode(w & 0xffff, w >>> 16);
  return s;
}
