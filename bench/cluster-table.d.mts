// Types of bench/cluster-table.mjs for bench/cluster.ts.
export const TARGET_NODE_LOSS_MS: number;
export const PUBLISHED_NODE_LOSS_S: { docker_swarm: number; nomad: number; kubernetes: number };
export function clusterTable(o: Record<string, unknown>): string;
