import { nodeAttribute } from "../model/eligibility.js";
import type { Filter, PlacementTask } from "./filters/filter.js";
import type { Scorer } from "./scorers/scorer.js";
import { MISSING_ATTRIBUTE, narrowBySpread } from "./spread-preferences.js";
import { addTask, type NodeView } from "./view.js";

/** The nodes of one value of the first spread attribute (all nodes when the task has no spread). */
interface SpreadGroup {
  /** Candidate indexes, ascending, of the group's nodes that passed the filters when the group began. */
  members: number[];
  /** Position in `members` of the first node still feasible: the group's place in narrowBySpread's order. */
  first: number;
  /** Nodes still feasible. */
  feasible: number;
  /** Tasks of the service on the feasible nodes (what spread compares). */
  sum: number;
  /** byCount[n] = feasible nodes holding n tasks of the service (gives the maximum without a scan). */
  byCount: number[];
}

/**
 * Places a run of tasks of one service and one spec on the same candidates, with the decisions
 * `Pipeline.place` would make for each in turn, without re-filtering every node for every task.
 *
 * Why it is the same: filters and scorers are pure functions of (task, node view, most tasks of
 * the service on a preferred node), the tasks of a run are interchangeable for them, and placing a
 * task changes one view only, the chosen node's. So each node is filtered once when the run begins
 * and re-checked only when a task lands on it; per spread value the service's task count and a
 * histogram of per-node counts are kept up to date; a node's total score is kept until its view or
 * the maximum changes. What remains per task is the final scan over the preferred nodes, in the
 * very order and with the very comparison of `place` (ties within 1e-12 go to the smaller id).
 * With two or more spread attributes, the levels after the first are narrowed by narrowBySpread.
 */
export class GroupPlacement {
  private readonly active: Filter[];
  private readonly groups: SpreadGroup[] = [];
  private readonly groupOf: Int32Array;
  private readonly feasible: Uint8Array;
  private readonly counts: Int32Array;
  /** The maximum a node's cached total was computed with; -1: none or stale. */
  private readonly cachedFor: Int32Array;
  private readonly cachedTotal: Float64Array;

  constructor(
    private readonly task: PlacementTask,
    private readonly candidates: NodeView[],
    filters: Filter[],
    private readonly scorers: Scorer[],
  ) {
    this.active = filters.filter((f) => f.appliesTo(task));
    const n = candidates.length;
    this.groupOf = new Int32Array(n).fill(-1);
    this.feasible = new Uint8Array(n);
    this.counts = new Int32Array(n);
    this.cachedFor = new Int32Array(n).fill(-1);
    this.cachedTotal = new Float64Array(n);
    const attr = task.spec.placement.spread?.[0];
    const byValue = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const v = candidates[i]!;
      if (!this.passes(v)) continue;
      const key = attr === undefined ? "" : (nodeAttribute(v.node, attr) ?? MISSING_ATTRIBUTE);
      let g = byValue.get(key);
      if (g === undefined) {
        g = this.groups.length;
        byValue.set(key, g);
        this.groups.push({ members: [], first: 0, feasible: 0, sum: 0, byCount: [] });
      }
      const group = this.groups[g]!;
      const count = v.tasksByService.get(task.serviceId) ?? 0;
      this.groupOf[i] = g;
      this.feasible[i] = 1;
      this.counts[i] = count;
      group.members.push(i);
      group.feasible++;
      group.sum += count;
      bump(group.byCount, count, 1);
    }
  }

  /** Places the next task of the run: the candidate index it went to, or undefined when no node is feasible. */
  next(): { index: number; scores: Record<string, number> } | undefined {
    const tied = this.fewestFirst();
    if (tied.length === 0) return undefined;
    const levels = this.task.spec.placement.spread?.length ?? 0;
    const best = levels > 1 ? this.bestDeeper(tied) : this.bestIn(tied);
    const v = this.candidates[best]!;
    // The scores reported are the ones the choice was made with (computed before booking).
    const maxOfService = this.cachedFor[best]!;
    const scores: Record<string, number> = {};
    for (const s of this.scorers) scores[s.name] = s.score(this.task, v, maxOfService);
    this.book(best);
    return { index: best, scores };
  }

  private passes(v: NodeView): boolean {
    for (const f of this.active) if (f.check(this.task, v) !== undefined) return false;
    return true;
  }

  /** The groups narrowBySpread keeps for the first attribute, in its order (first feasible node). */
  private fewestFirst(): SpreadGroup[] {
    let fewest = Infinity;
    for (const g of this.groups) if (g.feasible > 0 && g.sum < fewest) fewest = g.sum;
    const tied = this.groups.filter((g) => g.feasible > 0 && g.sum === fewest);
    if (tied.length > 1) tied.sort((a, b) => a.members[a.first]! - b.members[b.first]!);
    return tied;
  }

  private bestIn(tied: SpreadGroup[]): number {
    let maxOfService = 0;
    for (const g of tied) maxOfService = Math.max(maxOfService, g.byCount.length - 1);
    let best = -1;
    let bestScore = -Infinity;
    for (const g of tied) {
      const { members } = g;
      for (let k = g.first; k < members.length; k++) {
        const i = members[k]!;
        if (this.feasible[i] === 0) continue;
        const total = this.total(i, maxOfService);
        if (total > bestScore + 1e-12 || (Math.abs(total - bestScore) <= 1e-12 && best >= 0 && this.candidates[i]!.node.id < this.candidates[best]!.node.id)) {
          best = i;
          bestScore = total;
        }
      }
    }
    return best;
  }

  /** Two or more spread levels: the first from the groups, the others as narrowBySpread does them. */
  private bestDeeper(tied: SpreadGroup[]): number {
    const pool: NodeView[] = [];
    const indexOf = new Map<NodeView, number>();
    for (const g of tied) {
      for (let k = g.first; k < g.members.length; k++) {
        const i = g.members[k]!;
        if (this.feasible[i] === 0) continue;
        pool.push(this.candidates[i]!);
        indexOf.set(this.candidates[i]!, i);
      }
    }
    const preferred = narrowBySpread(this.task, pool, 1);
    let maxOfService = 0;
    for (const v of preferred) maxOfService = Math.max(maxOfService, this.counts[indexOf.get(v)!]!);
    let best = -1;
    let bestScore = -Infinity;
    for (const v of preferred) {
      const i = indexOf.get(v)!;
      const total = this.total(i, maxOfService);
      if (total > bestScore + 1e-12 || (Math.abs(total - bestScore) <= 1e-12 && best >= 0 && v.node.id < this.candidates[best]!.node.id)) {
        best = i;
        bestScore = total;
      }
    }
    return best;
  }

  /** Sum of score × weight, added in the scorers' order as `place` adds them. */
  private total(i: number, maxOfService: number): number {
    if (this.cachedFor[i] === maxOfService) return this.cachedTotal[i]!;
    const v = this.candidates[i]!;
    let total = 0;
    for (const s of this.scorers) total += s.score(this.task, v, maxOfService) * s.weight;
    this.cachedFor[i] = maxOfService;
    this.cachedTotal[i] = total;
    return total;
  }

  /** Books the task on node i and brings its group up to date; no other node changed. */
  private book(i: number): void {
    const v = this.candidates[i]!;
    addTask(v, this.task);
    this.cachedFor[i] = -1;
    const g = this.groups[this.groupOf[i]!]!;
    const before = this.counts[i]!;
    bump(g.byCount, before, -1);
    g.sum -= before;
    this.counts[i] = before + 1;
    if (this.passes(v)) {
      bump(g.byCount, before + 1, 1);
      g.sum += before + 1;
      return;
    }
    this.feasible[i] = 0;
    g.feasible--;
    while (g.first < g.members.length && this.feasible[g.members[g.first]!] === 0) g.first++;
  }
}

/** Adds d to hist[n], keeping the array's last entry non-zero so length - 1 is the maximum. */
function bump(hist: number[], n: number, d: number): void {
  while (hist.length <= n) hist.push(0);
  hist[n] = (hist[n] ?? 0) + d;
  while (hist.length > 0 && hist[hist.length - 1] === 0) hist.pop();
}
