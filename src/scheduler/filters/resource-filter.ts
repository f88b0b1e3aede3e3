import { formatBytes } from "../../input/bytes.js";
import type { Filter } from "./filter.js";

export const resourceFilter: Filter = {
  name: "resources",
  appliesTo: (t) => (t.spec.reservations.cpus ?? 0) > 0 || (t.spec.reservations.memoryBytes ?? 0) > 0,
  check: (t, v) => {
    const cpus = t.spec.reservations.cpus ?? 0;
    const mem = t.spec.reservations.memoryBytes ?? 0;
    if (cpus > 0 && v.reservedCpus + cpus > v.node.resources.cpus + 1e-9) return `insufficient cpu (needs ${cpus})`;
    if (mem > 0 && v.reservedMemoryBytes + mem > v.node.resources.memoryBytes) return `insufficient memory (needs ${formatBytes(mem)})`;
    return undefined;
  },
};
