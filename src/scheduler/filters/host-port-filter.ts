import type { Filter } from "./filter.js";

/** A port published in host mode is the task's own port on its node: one task per node holds it. */
export const hostPortFilter: Filter = {
  name: "host-ports",
  appliesTo: (t) => (t.spec.hostPorts?.length ?? 0) > 0,
  check: (t, v) => {
    const taken = t.spec.hostPorts!.find((h) => v.hostPorts.has(h.published));
    return taken ? `host port ${taken.published} in use` : undefined;
  },
};
