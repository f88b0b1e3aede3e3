import { isNodeReady } from "../../model/eligibility.js";
import type { Filter } from "./filter.js";

export const readyFilter: Filter = {
  name: "ready",
  appliesTo: () => true,
  check: (_t, v) => (isNodeReady(v.node) ? undefined : `not ready (${v.node.status.state})`),
};
