import { availabilityFilter } from "./filters/availability-filter.js";
import { constraintFilter } from "./filters/constraint-filter.js";
import { driverFilter } from "./filters/driver-filter.js";
import { hostPortFilter } from "./filters/host-port-filter.js";
import { limitsFilter } from "./filters/limits-filter.js";
import { maxReplicasFilter } from "./filters/max-replicas-filter.js";
import { moveFilter } from "./filters/move-filter.js";
import { narrowBySpread } from "./spread-preferences.js";
import type { Filter, PlacementTask } from "./filters/filter.js";
import { readyFilter } from "./filters/ready-filter.js";
import { resourceFilter } from "./filters/resource-filter.js";
import { leastAllocatedScorer } from "./scorers/least-allocated-scorer.js";
import type { Scorer } from "./scorers/scorer.js";
import { spreadScorer } from "./scorers/spread-scorer.js";
import { explainRejections } from "./explain.js";
import { GroupPlacement } from "./group-placement.js";
import { addTask, type NodeView } from "./view.js";

/** Cheap filters first: most nodes are rejected before constraints are parsed. */
export const defaultFilters: Filter[] = [readyFilter, availabilityFilter, moveFilter, driverFilter, limitsFilter, constraintFilter, resourceFilter, hostPortFilter, maxReplicasFilter];
export const defaultScorers: Scorer[] = [spreadScorer, leastAllocatedScorer];

export type Placement = { nodeId: string; scores: Record<string, number> } | { reason: string };

export class Pipeline {
  constructor(
    private readonly filters: Filter[] = defaultFilters,
    private readonly scorers: Scorer[] = defaultScorers,
  ) {}

  /**
   * Places one task on the best of `candidates` and books it on that node's view, so the next
   * task of the batch sees the usage. Returns the reason when no node fits.
   */
  place(task: PlacementTask, candidates: NodeView[]): Placement {
    const active = this.filters.filter((f) => f.appliesTo(task));
    const rejections: string[] = [];
    const feasible: NodeView[] = [];
    for (const v of candidates) {
      let reason: string | undefined;
      for (const f of active) if ((reason = f.check(task, v)) !== undefined) break;
      if (reason === undefined) feasible.push(v);
      else rejections.push(reason);
    }
    if (feasible.length === 0) return { reason: explainRejections(candidates.length, rejections) };
    const preferred = narrowBySpread(task, feasible);
    let maxOfService = 0;
    for (const v of preferred) maxOfService = Math.max(maxOfService, v.tasksByService.get(task.serviceId) ?? 0);
    let best: NodeView | undefined;
    let bestScore = -Infinity;
    let bestScores: Record<string, number> = {};
    for (const v of preferred) {
      const scores: Record<string, number> = {};
      let total = 0;
      for (const s of this.scorers) total += (scores[s.name] = s.score(task, v, maxOfService)) * s.weight;
      // Ties go to the lexically smaller node id so placement is deterministic.
      if (total > bestScore + 1e-12 || (Math.abs(total - bestScore) <= 1e-12 && best && v.node.id < best.node.id)) {
        best = v;
        bestScore = total;
        bestScores = scores;
      }
    }
    addTask(best!, task);
    return { nodeId: best!.node.id, scores: bestScores };
  }

  /**
   * Places `count` tasks that are alike for placement (one service, one spec), in turn: the same
   * placements, in the same order, as `count` calls of `place`, at a fraction of the cost on
   * thousands of nodes (group-placement.ts says why they are the same).
   */
  placeAlike(task: PlacementTask, count: number, candidates: NodeView[]): Placement[] {
    const out: Placement[] = [];
    const group = new GroupPlacement(task, candidates, this.filters, this.scorers);
    while (out.length < count) {
      const p = group.next();
      if (!p) break;
      out.push({ nodeId: candidates[p.index]!.node.id, scores: p.scores });
    }
    if (out.length < count) {
      // No node fits: `place` builds the reason; nothing is booked, so it holds for the rest.
      const unplaced = this.place(task, candidates);
      while (out.length < count) out.push(unplaced);
    }
    return out;
  }
}
