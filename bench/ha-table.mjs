// The HA section's constants and markdown table (bench/ha.ts writes the figures; this file is
// plain JS so that bench/run.mjs can print the table without tsx).

/** The target: leader killed → first successful write through another manager. */
export const TARGET_FAILOVER_MS = 2000;
/**
 * Published defaults, **not measured here** (sources cited in docs/benchmarks.md, "HA"):
 * swarmkit's Raft (manager/state/raft/raft.go: ElectionTick 10 × TickInterval 1 s; etcd/raft
 * randomizes the timeout in [10, 20) ticks) and Kubernetes' leader election
 * (component-base/config/v1alpha1/defaults.go: LeaseDuration 15 s, RenewDeadline 10 s, RetryPeriod 2 s).
 */
export const PUBLISHED_FAILOVER_DEFAULTS_S = {
  swarm_raft_election_timeout: 10,
  kubernetes_lease_duration: 15,
  kubernetes_renew_deadline: 10,
  kubernetes_retry_period: 2,
};

const cell = (l) => (l && !l.error ? `${l.p50_ms} / ${l.p99_ms}` : '—');

export function haTable(o) {
  const L = [];
  const c = o.conditions ?? {};
  L.push(`HA: API write latency, one \`baton up\` on SQLite vs on a 3-member etcd (same machine) — ${c.date}, node ${c.node}, ${c.cpus} CPUs, load ${c.loadavg_start?.join('/')} → ${c.loadavg_end?.join('/') ?? '?'}, ${o.config?.writes_per_level} writes per level (create or delete of a 0-replica service). p50 / p99 ms.`);
  L.push('');
  if (o.error) L.push(`**ha section failed**: ${o.error}`, '');
  const w = o.write_latency;
  if (w) {
    L.push('| concurrent clients | SQLite p50 / p99 (ms) | etcd ×3 p50 / p99 (ms) | etcd/SQLite p50 | etcd/SQLite p99 | SQLite writes/s | etcd writes/s | errors (SQLite, etcd) |');
    L.push('|---|---|---|---|---|---|---|---|');
    for (const n of o.config?.clients ?? []) {
      const k = `c${n}`;
      const a = w.sqlite?.[k];
      const b = w.etcd?.[k];
      const r = w.ratio_etcd_to_sqlite?.[k] ?? {};
      L.push(`| ${n} | ${cell(a)} | ${cell(b)} | ${r.p50 ?? '—'} | ${r.p99 ?? '—'} | ${a?.writes_per_s ?? '—'} | ${b?.writes_per_s ?? '—'} | ${a?.errors ?? '—'}, ${b?.errors ?? '—'} |`);
    }
    for (const s of ['sqlite', 'etcd']) if (w[s]?.error) L.push('', `**${s} failed**: ${w[s].error}`);
    L.push('');
  }
  const f = o.failover;
  if (f) {
    const p = PUBLISHED_FAILOVER_DEFAULTS_S;
    if (f.measured) {
      const ok = (x) => (x.max_ms <= TARGET_FAILOVER_MS ? 'yes' : x.p50_ms <= TARGET_FAILOVER_MS ? 'p50 only' : 'no');
      const cell2 = (x) => `${x.p50_ms} / ${x.max_ms}`;
      L.push(`Failover under a write load (3 managers, 3 etcd members with Baton's managed raft timings, network namespaces), ${f.repetitions} repetitions per case, target ≤ ${TARGET_FAILOVER_MS} ms. p50 / max ms from the fault; etcd raft terms ${f.etcd_raft_terms?.at_start} → ${f.etcd_raft_terms?.at_end}.`, '');
      L.push('| fault | first write via another manager | a leader (isLeader) | Leader in `node ls` | longest gap without a write | within target (first write, leader) |', '|---|---|---|---|---|---|');
      for (const [k, x] of Object.entries(f.cases ?? {})) {
        L.push(`| ${x.what ?? k} | ${cell2(x.first_write_through_another_manager)} | ${cell2(x.new_leader)} | ${cell2(x.new_leader_in_node_ls)} | ${cell2(x.longest_write_gap)} | ${ok(x.first_write_through_another_manager)}, ${ok(x.new_leader)} |`);
      }
      L.push('');
    } else if (f.error) L.push(`**failover failed**: ${f.error}`);
    else L.push(`Failover (leader killed → first successful write through another manager, target ≤ ${TARGET_FAILOVER_MS} ms): not measured (${f.reason}).`);
    L.push(`Published defaults, **not measured here**: Swarm's Raft election timeout ${p.swarm_raft_election_timeout} s (10 ticks of 1 s, randomized up to 20 s); Kubernetes leader election LeaseDuration ${p.kubernetes_lease_duration} s, RenewDeadline ${p.kubernetes_renew_deadline} s, RetryPeriod ${p.kubernetes_retry_period} s.`);
  }
  return L.join('\n');
}
