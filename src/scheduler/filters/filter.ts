import type { Task } from "../../model/objects.js";
import type { NodeView } from "../view.js";

/** What placement looks at; `moveOf` only on a move's replacement. */
export type PlacementTask = Pick<Task, "serviceId" | "spec"> & Partial<Pick<Task, "moveOf">>;

/** One reason a node cannot take a task. `check` returns undefined to pass, or the reason. */
export interface Filter {
  readonly name: string;
  appliesTo(task: PlacementTask): boolean;
  check(task: PlacementTask, node: NodeView): string | undefined;
}
