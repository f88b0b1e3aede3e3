import type { Filter } from "./filter.js";

/** Only active nodes take new tasks; pause and drain do not. */
export const availabilityFilter: Filter = {
  name: "availability",
  appliesTo: () => true,
  check: (_t, v) => (v.node.availability === "active" ? undefined : `availability ${v.node.availability}`),
};
