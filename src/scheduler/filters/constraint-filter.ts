import { failedConstraint } from "../../model/eligibility.js";
import type { Filter } from "./filter.js";

export const constraintFilter: Filter = {
  name: "constraints",
  appliesTo: (t) => t.spec.placement.constraints.length > 0,
  check: (t, v) => {
    const c = failedConstraint(v.node, t.spec);
    return c ? `constraint ${c.text}` : undefined;
  },
};
