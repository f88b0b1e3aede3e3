// The cluster section's constants and markdown table (bench/cluster.ts writes the figures; this
// file is plain JS so that bench/run.mjs can print the table without tsx).

/** The target: node loss → every replica running and ready elsewhere. */
export const TARGET_NODE_LOSS_MS = 3000;
/**
 * Published defaults the issue quotes, **not measured here**: Docker Swarm (dispatcher heartbeat
 * 5 s × grace 3 ≈ 15 s before tasks are rescheduled), Nomad (client heartbeat TTL, ~20 s by
 * default before allocations are replaced), Kubernetes (node-monitor-grace-period 40 s + the
 * default 300 s not-ready toleration before eviction ≈ 6 min).
 */
export const PUBLISHED_NODE_LOSS_S = { docker_swarm: 15, nomad: 20, kubernetes: 340 };

const fmt = (s) => (s && s.n ? `${s.median} / ${s.p90} / ${s.min}–${s.max}` : '—');

export function clusterTable(o) {
  const L = [];
  const c = o.conditions ?? {};
  L.push(`Cluster on network namespaces (1 manager + 2 workers, a 4th host for joins) — ${c.date}, node ${c.node}, ${c.cpus} CPUs, load ${c.loadavg_start?.join('/')} → ${c.loadavg_end?.join('/') ?? '?'}, ${o.config?.reps} reps, poll ${o.config?.poll_ms} ms. median / p90 / min–max ms.`);
  L.push('');
  if (o.error) L.push(`**cluster section failed**: ${o.error}`, '');
  const j = o.join;
  const n = o.node_loss;
  L.push('| measurement | Baton | floor | Baton/floor |');
  L.push('|---|---|---|---|');
  if (j) {
    L.push(`| join: spawn \`baton join\` → node Ready on the manager (ms) | ${fmt(j.join_to_ready_ms)} | ${fmt(j.floor_baton_info_ms)}¹ | **${j.ratio_to_floor ?? '—'}** |`);
    L.push(`| join: spawn → "joined the cluster" log line (ms) | ${fmt(j.spawn_to_joined_log_line_ms)} | — | — |`);
    L.push(`| join: that log line → Ready (ms) | ${fmt(j.joined_log_line_to_ready_ms)} | — | — |`);
    L.push(`| \`node -e 0\` in the namespace (ms) | ${fmt(j.node_e_0_in_namespace_ms)} | — | — |`);
  }
  if (n) {
    L.push(`| SIGKILL one task on a live worker → replacement ready (ms) | ${fmt(n.floor_task_restart_ms)} | — | — |`);
    for (const [v, label] of [['sigkill', "SIGKILL of a worker's baton"], ['partition', 'partition of a worker (veth down)']]) {
      const r = n[v];
      if (!r) continue;
      L.push(`| node loss, ${label} → ${6} replicas ready elsewhere (ms) | ${fmt(r.replicas_ready_elsewhere_ms)} | ${r.floor_bound_ms ?? '—'}² | **${r.ratio_to_floor ?? '—'}** |`);
      L.push(`| node loss, ${label} → node marked Down (ms) | ${fmt(r.node_marked_down_ms)} | 1500 (grace)³ | — |`);
      L.push(`| node loss, ${label}: marked Down → replicas ready elsewhere (ms) | ${fmt(r.down_to_ready_elsewhere_ms)} | ${n.floor_task_restart_ms.median} (task restart) | ${r.down_to_ready_elsewhere_ms?.median && n.floor_task_restart_ms.median ? Math.round((r.down_to_ready_elsewhere_ms.median / n.floor_task_restart_ms.median) * 100) / 100 : '—'} |`);
    }
  }
  L.push('');
  if (j) L.push('¹ floor for a join: `baton info` run in the same namespace (Node start, CLI load, one API request).');
  if (n) {
    L.push('² floor for node loss: heartbeat grace (1.5 s) + the median restart of one task on a live node (row above).');
    L.push('³ the grace runs from the node\'s last heartbeat (sent every 500 ms), not from the cut, and the manager checks every 500 ms: detection falls 1.0–2.0 s after the cut, 1.5 s on average.');
    const p = o.published_default_not_measured_s;
    const parts = Object.entries(n).filter(([k]) => k !== 'floor_task_restart_ms').map(([v, r]) => `${v} ${r.replicas_ready_elsewhere_ms.median} ms (${r.meets_target ? 'met' : '**not met**'}, ${r.ratio_to_target}× the target)`);
    L.push(`Target ≤ ${o.target_node_loss_ms} ms: ${parts.join('; ')}. Published defaults, **not measured here**: Docker Swarm ≈ ${p.docker_swarm} s (${p.docker_swarm * 1000 / o.target_node_loss_ms}× the target), Nomad ${p.nomad} s (${Math.round((p.nomad * 1000 / o.target_node_loss_ms) * 100) / 100}×), Kubernetes ≈ 6 min (${Math.round(p.kubernetes * 1000 / o.target_node_loss_ms)}×).`);
  }
  return L.join('\n') + '\n';
}
