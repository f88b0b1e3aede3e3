import type { Filter } from "./filter.js";

export const readyFilter: Filter = {
  name: "ready",
  appliesTo: () => true,
  check: (_t, v) => (v.node.status.state === "ready" ? undefined : `not ready (${v.node.status.state})`),
};
