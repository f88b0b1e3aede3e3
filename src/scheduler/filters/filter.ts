import type { Task } from "../../model/objects.js";
import type { NodeView } from "../view.js";

export type PlacementTask = Pick<Task, "serviceId" | "spec">;

/** One reason a node cannot take a task. `check` returns undefined to pass, or the reason. */
export interface Filter {
  readonly name: string;
  appliesTo(task: PlacementTask): boolean;
  check(task: PlacementTask, node: NodeView): string | undefined;
}
