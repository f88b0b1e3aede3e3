// Types of bench/ha-table.mjs for bench/ha.ts.
export const TARGET_FAILOVER_MS: number;
export const PUBLISHED_FAILOVER_DEFAULTS_S: { swarm_raft_election_timeout: number; kubernetes_lease_duration: number; kubernetes_renew_deadline: number; kubernetes_retry_period: number };
export function haTable(o: Record<string, unknown>): string;
