import type { PlacementTask } from "../filters/filter.js";
import type { NodeView } from "../view.js";

/** Scores a feasible node from 0 (worst) to 1 (best); the pipeline sums score × weight. */
export interface Scorer {
  readonly name: string;
  readonly weight: number;
  score(task: PlacementTask, node: NodeView, maxOfService: number): number;
}
