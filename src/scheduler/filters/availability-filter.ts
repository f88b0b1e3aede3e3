import { acceptsNewTasks } from "../../model/eligibility.js";
import type { Filter } from "./filter.js";

/** Only active nodes take new tasks; pause and drain do not (model/eligibility.ts). */
export const availabilityFilter: Filter = {
  name: "availability",
  appliesTo: () => true,
  check: (_t, v) => (acceptsNewTasks(v.node) ? undefined : `availability ${v.node.availability}`),
};
