import type { Filter } from "./filter.js";

export const driverFilter: Filter = {
  name: "driver",
  appliesTo: () => true,
  check: (t, v) => (v.node.drivers.includes(t.spec.driver) ? undefined : `no ${t.spec.driver} driver`),
};
