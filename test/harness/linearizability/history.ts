// The vocabulary of the linearizability checker: a history of operations as concurrent clients
// saw them, and the sequential model they are checked against.

/**
 * How an operation ended, seen from its client:
 * - `ok`: the server answered success; `output` is what it answered.
 * - `fail`: the server answered a definite refusal (`output.code`, e.g. VERSION_CONFLICT): the
 *   operation took no effect, but its answer is still an observation the model must explain.
 * - `timeout`: no answer (connection error, timeout, 5xx): the operation may have taken effect at
 *   any moment after its invoke, or never. As in Porcupine and Knossos it gets an infinite return
 *   time, so it may be ordered anywhere after its invoke, including after everything else.
 */
export type Outcome = "ok" | "fail" | "timeout";

export interface Operation<I = unknown, O = unknown> {
  /** Who issued it; one client runs one operation at a time. */
  client: number | string;
  /** The operation's name in the model ("create", "update", "delete", "get"). */
  op: string;
  input: I;
  /** When the client sent it (ms, any monotonic clock shared by every client). */
  invokeAt: number;
  /** When the answer arrived; absent for `timeout`. */
  returnAt?: number;
  /** The answer (absent for `timeout`). */
  output?: O;
  outcome: Outcome;
  /** For a `timeout`: why no definite answer came (timeout, connection error, "HTTP 503 UNAVAILABLE"); shown in failures. */
  error?: string;
}

/**
 * A sequential specification. The checker searches for an order of the operations that respects
 * real time (an operation that returned before another was invoked comes first) in which every
 * step is one the model allows. Models may be nondeterministic (`step` returns every possible
 * next state): the search then follows the set of possible states, as Porcupine does for its
 * nondeterministic models.
 */
export interface Model<S, Op extends Operation = Operation> {
  /** P-compositionality: independent objects are checked separately. */
  partitionKey(op: Op): string;
  init(): S;
  /**
   * The states after `op` takes effect in `state` with its recorded outcome; empty when the
   * model cannot produce that outcome from that state. A `timeout` may produce any outcome.
   */
  step(state: S, op: Op): S[];
  /** Equal states have equal keys (memoization of the search). */
  stateKey(state: S): string;
  /** Operations that never change the state; a timed-out one carries no information and is dropped. */
  isReadOnly(op: Op): boolean;
  /**
   * Whether an unanswered `op` can no longer change anything, in `state` or any state after it
   * (e.g. an update whose version is already behind: versions never come back). The search then
   * orders it at once instead of trying it at every later point: each unanswered write that stays
   * possible doubles what the search must visit.
   */
  isSpent?(state: S, op: Op): boolean;
  /**
   * Operations checked outside the linearizable order (e.g. reads marked stale). Returns the
   * problem with `op` given every operation of its partition, or undefined when it is acceptable.
   */
  checkUnordered?(op: Op, partition: readonly Op[]): string | undefined;
  isUnordered?(op: Op): boolean;
  describeOp(op: Op): string;
  describeState(state: S): string;
  /** Why `op` cannot take effect in `state` (called when step returned nothing). */
  explainStep(state: S, op: Op): string;
}
