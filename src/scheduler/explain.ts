/**
 * "no node satisfies: 3 nodes insufficient memory (needs 512 MiB); 2 nodes constraint
 * node.labels.tier == data" — grouped by reason, most common first. Users read this.
 */
export function explainRejections(nodeCount: number, rejections: string[]): string {
  if (nodeCount === 0) return "no node satisfies: no nodes in the cluster";
  const counts = new Map<string, number>();
  for (const r of rejections) counts.set(r, (counts.get(r) ?? 0) + 1);
  const parts = [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([reason, n]) => `${n} node${n === 1 ? "" : "s"} ${reason}`);
  return `no node satisfies: ${parts.join("; ")}`;
}
