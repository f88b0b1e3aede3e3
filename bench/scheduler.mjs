#!/usr/bin/env node
// The scheduler alone, in process: BENCH_SCHED_TASKS (150,000) pending tasks onto
// BENCH_SCHED_NODES (5,000) simulated ready nodes, with constraints and spread preferences, through
// the real Scheduler (dist/scheduler/scheduler.js) over the real store (memory, and the SQLite
// store `baton up` uses). See docs/benchmarks.md ("Scheduler") for the exact definitions.
//
// Each measurement runs in a fresh child process (`node --expose-gc`), so that its memory figures
// hold only the store, the scheduler and what they hold. Subjects:
//   baton  : Scheduler.start() → every task assigned (the manager's own driving: a full pass on
//            start, decisions committed through store.update)
//   floor  : the same store, read and commit (in chunks of the same size), but each task goes to
//            the next node round-robin, no filters, no scores (what committing the assignments
//            costs by itself)
// Afterwards the bench checks every placement itself (constraint, spread per zone within ±1,
// reservations within capacity), and re-plans the same snapshot with planPlacements to check
// that the decisions are the committed ones (and to time the decision alone).
//
// Env: BENCH_SCHED_NODES (5000), BENCH_SCHED_TASKS (150000), BENCH_SCHED_REPLICAS (500, tasks
// per service), BENCH_SCHED_STORES (memory,sqlite), BENCH_SCHED_SQLITE_TASKS (= TASKS: a smaller
// size for the SQLite runs), BENCH_SCHED_TIMEOUT_S (600 per child), BENCH_SCHED_FLOOR (1; 0 skips it),
// BENCH_SCHED_COMMIT_OPS (the Scheduler's maxOpsPerCommit; unset: its default).
// Writes bench/results/scheduler-latest.json; prints a markdown table on stdout, progress on stderr.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg, log, now, r1 } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const DIST = path.join(ROOT, 'dist');
const RESULTS = path.join(HERE, 'results');

const NODES = Number(process.env.BENCH_SCHED_NODES || 5000);
const TASKS = Number(process.env.BENCH_SCHED_TASKS || 150000);
const REPLICAS = Number(process.env.BENCH_SCHED_REPLICAS || 500);
const STORES = (process.env.BENCH_SCHED_STORES || 'memory,sqlite').split(',').filter(Boolean);
const SQLITE_TASKS = Number(process.env.BENCH_SCHED_SQLITE_TASKS || TASKS);
const CHILD_TIMEOUT_S = Number(process.env.BENCH_SCHED_TIMEOUT_S || 600);
const WITH_FLOOR = process.env.BENCH_SCHED_FLOOR !== '0';
// Unset: the Scheduler's own default (SchedulerDeps.maxOpsPerCommit).
const COMMIT_OPS = process.env.BENCH_SCHED_COMMIT_OPS ? Number(process.env.BENCH_SCHED_COMMIT_OPS) : undefined;
const ZONES = 10;
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/**
 * The published figures the issue quotes. Not measured here: other software, other hardware,
 * other workloads (C1M: 1,000,000 containers on 5,000 hosts; kube-scheduler: its scheduler_perf
 * thresholds at 5,000 nodes). Only a scale of reference.
 */
export const PUBLISHED = {
  nomad_c1m_per_s: 3750,
  kube_scheduler_5000_nodes_per_s: [680, 810],
};
export const TARGET_PER_S = 10000;

// ---------------------------------------------------------------- the cluster

/**
 * Node i: zone z(i % 10), tier web for even i / 10, db for odd, 16 CPUs and 64 GiB each (room
 * for every task: capacity never decides, so spread must come out even). Ids sort like i.
 */
function nodeShape(i) {
  return { id: `node-${String(i).padStart(6, '0')}`, zone: `z${i % ZONES}`, tier: Math.floor(i / ZONES) % 2 === 0 ? 'web' : 'db' };
}

/** Service k: three kinds in turn — web (constrained), db (constrained), any tier; all spread over zones. */
function serviceShape(k) {
  const kind = ['web', 'db', 'any'][k % 3];
  const input = {
    name: `svc-${String(k).padStart(5, '0')}`,
    command: ['sleep', '3600'],
    placementPrefs: ['spread=node.labels.zone'],
    ...(kind === 'any' ? {} : { constraints: [`node.labels.tier==${kind}`] }),
    ...(kind === 'web' ? { reserveCpus: 0.05, reserveMemory: '64m' } : kind === 'db' ? { reserveCpus: 0.1, reserveMemory: '128m' } : {}),
  };
  return { kind, input };
}

async function seed(store, nodes, tasks) {
  const { resolveServiceSpec } = await import(path.join(DIST, 'input/resolve.js'));
  const { newTask } = await import(path.join(DIST, 'orchestrator/plan.js'));
  const { newId } = await import(path.join(DIST, 'lib/ids.js'));
  const t = Date.now();
  // Nodes in chunks, as agents would register them (one transaction each would only be slower).
  for (let i = 0; i < nodes; i += 1000) {
    await store.update((tx) => {
      for (let j = i; j < Math.min(nodes, i + 1000); j++) {
        const s = nodeShape(j);
        tx.create('nodes', {
          id: s.id, hostname: `host-${j}`, role: 'worker', availability: 'active', labels: { zone: s.zone, tier: s.tier },
          status: { state: 'ready', message: '', heartbeatAt: t }, resources: { cpus: 16, memoryBytes: 64 * GiB },
          drivers: ['process'], platform: { os: 'linux', arch: 'x64' }, agentVersion: 'bench',
        });
      }
    });
  }
  // One transaction per service with all its tasks, as the orchestrator writes them; pending,
  // as after a pass that found no node (the scheduler treats new and pending alike).
  const services = [];
  for (let k = 0, left = tasks; left > 0; k++) {
    const { kind, input } = serviceShape(k);
    const replicas = Math.min(REPLICAS, left);
    left -= replicas;
    const spec = resolveServiceSpec({ ...input, replicas });
    const svc = await store.update((tx) => tx.create('services', { id: newId(), spec, specVersion: 1 }));
    services.push({ id: svc.id, kind, replicas, cpus: spec.task.reservations.cpus ?? 0, mem: spec.task.reservations.memoryBytes ?? 0 });
    await store.update((tx) => {
      for (let slot = 1; slot <= replicas; slot++) {
        const nt = newTask(svc, String(slot), t, { attempts: 0, recent: [], streak: 0 });
        tx.create('tasks', { ...nt, status: { state: 'pending', timestamp: t, message: 'waiting for the scheduler' } });
      }
    });
  }
  return services;
}

// ---------------------------------------------------------------- checks (the bench's own rules)

/**
 * Every task assigned to an existing node that satisfies its service's constraint; per service,
 * task counts per zone within ±1 (every zone has room); per node, reservations within capacity.
 * Written here from the workload's definition, not with the scheduler's code.
 */
function verify(tasks, services) {
  const problems = [];
  const note = (p) => { if (problems.length < 10) problems.push(p); };
  const svcById = new Map(services.map((s) => [s.id, s]));
  const perSvcZone = new Map(services.map((s) => [s.id, new Array(ZONES).fill(0)]));
  const used = new Map();
  let assigned = 0;
  for (const t of tasks) {
    if (t.status.state !== 'assigned' || !t.nodeId) { note(`task ${t.id} is ${t.status.state}: ${t.status.message}`); continue; }
    const m = /^node-(\d{6})$/.exec(t.nodeId);
    const i = m ? Number(m[1]) : NaN;
    if (!(i >= 0 && i < NODES)) { note(`task ${t.id} on unknown node ${t.nodeId}`); continue; }
    assigned++;
    const n = nodeShape(i);
    const s = svcById.get(t.serviceId);
    if (s.kind !== 'any' && n.tier !== s.kind) note(`task ${t.id} of a ${s.kind} service on ${n.tier} node ${n.id}`);
    perSvcZone.get(s.id)[i % ZONES]++;
    const u = used.get(n.id) ?? { cpus: 0, mem: 0 };
    u.cpus += s.cpus;
    u.mem += s.mem;
    used.set(n.id, u);
  }
  let worstSpread = 0;
  for (const [id, zones] of perSvcZone) {
    const d = Math.max(...zones) - Math.min(...zones);
    worstSpread = Math.max(worstSpread, d);
    if (d > 1) note(`service ${id}: tasks per zone ${zones.join(',')}`);
  }
  for (const [id, u] of used) if (u.cpus > 16 + 1e-9 || u.mem > 64 * GiB) note(`node ${id} over capacity: ${JSON.stringify(u)}`);
  return { ok: problems.length === 0 && assigned === tasks.length, assigned, worst_zone_spread: worstSpread, nodes_used: used.size, problems };
}

// ---------------------------------------------------------------- one measurement (child process)

function mem() {
  globalThis.gc?.();
  const m = process.memoryUsage();
  let hwm = null;
  try { hwm = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024; } catch { /* not Linux */ }
  return { rss_mib: r1(m.rss / MiB), heap_used_mib: r1(m.heapUsed / MiB), external_mib: r1(m.external / MiB), hwm_mib: hwm === null ? null : r1(hwm) };
}

const needsPlacement = (t) => t.desiredState === 'running' && (t.status.state === 'new' || t.status.state === 'pending');

/** Round-robin over the nodes, no filters or scores, committed like the scheduler commits. */
async function floorPass(store, chunk) {
  const { todo, nodes } = store.view((tx) => ({ todo: tx.list('tasks').filter(needsPlacement), nodes: tx.list('nodes').map((n) => n.id).sort() }));
  const decisions = todo.map((t, i) => ({ taskId: t.id, version: t.version, nodeId: nodes[i % nodes.length] }));
  const at = Date.now();
  for (let from = 0; from < decisions.length; from += chunk) await store.update((tx) => {
    for (const d of decisions.slice(from, from + chunk)) {
      const cur = tx.get('tasks', d.taskId);
      if (!cur || cur.version !== d.version || !needsPlacement(cur) || !tx.get('nodes', d.nodeId)) continue;
      tx.update('tasks', { ...cur, nodeId: d.nodeId, status: { ...cur.status, state: 'assigned', timestamp: at, message: 'scheduler assigned task to node' } });
    }
  });
}

async function child({ subject, store: kind, nodes, tasks, commitOps }) {
  const { systemClock } = await import(path.join(DIST, 'lib/clock.js'));
  const { createLogger } = await import(path.join(DIST, 'lib/log.js'));
  const { Scheduler, planPlacements } = await import(path.join(DIST, 'scheduler/scheduler.js'));
  const { Pipeline } = await import(path.join(DIST, 'scheduler/pipeline.js'));
  const res = { subject, store: kind, nodes, tasks, max_ops_per_commit: commitOps ?? 'default' };
  res.mem_empty = mem();
  let dir;
  let store;
  if (kind === 'sqlite') {
    const { openSqliteStore } = await import(path.join(DIST, 'store/sqlite/sqlite-store.js'));
    dir = mkdtempSync(path.join(os.tmpdir(), 'baton-bench-sched-'));
    store = openSqliteStore(path.join(dir, 'state.db'));
    res.sqlite = store.backendSettings();
  } else {
    const { createMemoryStore } = await import(path.join(DIST, 'store/memory/memory-store.js'));
    store = createMemoryStore();
  }
  try {
    let t0 = now();
    const services = await seed(store, nodes, tasks);
    res.services = services.length;
    res.seed_ms = r1(now() - t0);
    const snapshot = store.view((tx) => ({ todo: tx.list('tasks').filter(needsPlacement), nodes: tx.list('nodes') }));
    if (snapshot.todo.length !== tasks) throw new Error(`seeded ${snapshot.todo.length} pending tasks, wanted ${tasks}`);
    res.mem_seeded = mem();

    // What the rest of the manager sees: the dispatcher hears of assignments through watch.
    let watched = 0;
    const watch = store.watch(store.revision(), (evs) => { for (const e of evs) if (e.kind === 'tasks' && e.object.status.state === 'assigned') watched++; });
    // The scheduler logs a failed pass and carries on: the bench must not miss one.
    const logged = [];
    const log = createLogger({ level: 'warn', stream: { write: (line) => logged.push(line) } });
    t0 = now();
    if (subject === 'floor') {
      await floorPass(store, commitOps ?? 1000);
    } else {
      const scheduler = new Scheduler({ store, clock: systemClock, log, ...(commitOps ? { maxOpsPerCommit: commitOps } : {}) });
      scheduler.start();
      // The manager never waits for the scheduler; the bench does: idle = no pass running or due.
      await scheduler.idle();
      scheduler.stop();
    }
    res.wall_ms = r1(now() - t0);
    await new Promise((r) => setImmediate(r));
    watch.cancel();
    const placed = store.view((tx) => tx.list('tasks'));
    res.mem_holding = mem();
    if (subject === 'baton') {
      res.check = verify(placed, services);
      // The same snapshot planned again, in memory: the decision alone, and the same decisions.
      const byId = new Map(placed.map((t) => [t.id, t.nodeId]));
      const t1 = now();
      const again = planPlacements(snapshot.todo, snapshot.nodes, snapshot.todo, new Pipeline());
      res.plan_only_ms = r1(now() - t1);
      res.check.replanned_identical = again.every((d) => d.nodeId !== undefined && byId.get(d.taskId) === d.nodeId);
      if (!res.check.replanned_identical) res.check.ok = false;
    } else {
      res.check = { ok: placed.every((t) => t.status.state === 'assigned'), assigned: placed.filter((t) => t.status.state === 'assigned').length };
    }
    res.check.watch_events_assigned = watched;
    res.check.log_warnings_errors = logged.map((l) => JSON.parse(l).msg);
    if (watched !== res.check.assigned || logged.length) res.check.ok = false;
    res.placements_per_s = Math.round(res.check.assigned / (res.wall_ms / 1000));
    if (res.plan_only_ms) res.plan_only_per_s = Math.round(tasks / (res.plan_only_ms / 1000));
    res.mem_hwm_mib = mem().hwm_mib;
  } finally {
    store.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
  return res;
}

// ---------------------------------------------------------------- driver

function runChild(params) {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['--expose-gc', '--no-warnings=ExperimentalWarning', fileURLToPath(import.meta.url), '--child', JSON.stringify(params)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => c.kill('SIGKILL'), CHILD_TIMEOUT_S * 1000);
    c.on('exit', (code, sig) => {
      clearTimeout(timer);
      if (code === 0) {
        try { return resolve(JSON.parse(stdout.trim().split('\n').at(-1))); } catch { /* fall through */ }
      }
      const why = sig === 'SIGKILL' ? `not finished within ${CHILD_TIMEOUT_S} s (killed)` : `exited ${code ?? sig}: ${stderr.slice(-1500)}`;
      resolve({ ...params, error: why });
    });
  });
}

export async function runSchedulerBench() {
  const o = {
    bench: 'scheduler',
    complete: false,
    conditions: { date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? null, loadavg_start: loadavg() },
    config: { max_ops_per_commit: COMMIT_OPS ?? 'Scheduler default', nodes: NODES, tasks: TASKS, sqlite_tasks: SQLITE_TASKS, replicas_per_service: REPLICAS, zones: ZONES, stores: STORES, workload: 'services in turn: tier==web (0.05 cpu, 64m) | tier==db (0.1 cpu, 128m) | any tier; all spread=node.labels.zone; nodes 16 cpu / 64 GiB, zone = i % 10, tier alternates per 10 nodes' },
    target_per_s: TARGET_PER_S,
    reference_published_not_measured: PUBLISHED,
    runs: {},
  };
  const save = () => {
    mkdirSync(RESULTS, { recursive: true });
    const f = path.join(RESULTS, 'scheduler-latest.json');
    writeFileSync(f + '.tmp', JSON.stringify(o, null, 2) + '\n');
    renameSync(f + '.tmp', f);
  };
  for (const store of STORES) {
    const tasks = store === 'sqlite' ? SQLITE_TASKS : TASKS;
    for (const subject of WITH_FLOOR ? ['baton', 'floor'] : ['baton']) {
      log(`scheduler: ${subject} on the ${store} store, ${tasks} tasks onto ${NODES} nodes…`);
      const r = await runChild({ subject, store, nodes: NODES, tasks, commitOps: COMMIT_OPS });
      o.runs[`${subject}_${store}`] = r;
      if (r.error) log(`scheduler ${subject}/${store}: ${r.error}`);
      else log(`scheduler ${subject}/${store}: ${r.placements_per_s}/s (${r.wall_ms} ms${r.plan_only_ms ? `, plan alone ${r.plan_only_ms} ms` : ''}), holding RSS ${r.mem_holding.rss_mib} MiB heap ${r.mem_holding.heap_used_mib} MiB, check ${r.check.ok ? 'ok' : JSON.stringify(r.check.problems)}`);
      save();
    }
  }
  for (const store of STORES) {
    const b = o.runs[`baton_${store}`];
    const f = o.runs[`floor_${store}`];
    if (!b?.placements_per_s) continue;
    o[`summary_${store}`] = {
      placements_per_s: b.placements_per_s,
      meets_target: b.placements_per_s >= TARGET_PER_S && b.check.ok,
      ratio_to_floor: f?.placements_per_s ? r1(b.placements_per_s / f.placements_per_s) : null,
      ratio_to_nomad_c1m_published: r1(b.placements_per_s / PUBLISHED.nomad_c1m_per_s),
      ratio_to_kube_scheduler_published: [...PUBLISHED.kube_scheduler_5000_nodes_per_s].reverse().map((x) => r1(b.placements_per_s / x)),
    };
  }
  o.conditions.loadavg_end = loadavg();
  o.complete = true;
  save();
  return o;
}

export function schedulerTable(o) {
  const L = [];
  const c = o.conditions;
  L.push(`Scheduler alone, in process: ${o.config.tasks} pending tasks onto ${o.config.nodes} nodes (constraints + spread over ${o.config.zones} zones) — ${c.date}, node ${c.node}, ${c.cpus} CPUs, load ${c.loadavg_start.join('/')} → ${c.loadavg_end?.join('/')}. One run each, fresh process. Reference figures are published ones, **not measured in this run**.`);
  L.push('');
  L.push('| subject | store | tasks | wall (ms) | placements/s | decision alone (ms) | RSS / heap holding (MiB) | peak RSS (MiB) | checks | vs floor |');
  L.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const [k, r] of Object.entries(o.runs)) {
    if (r.error) { L.push(`| ${r.subject} | ${r.store} | ${r.tasks} | — | **${r.error}** | — | — | — | — | — |`); continue; }
    const f = r.subject === 'baton' ? o.runs[`floor_${r.store}`] : undefined;
    const chk = r.check.ok ? `ok${r.check.worst_zone_spread !== undefined ? ` (zone spread ≤ ${r.check.worst_zone_spread})` : ''}` : `**failed**: ${r.check.problems?.[0] ?? ''}`;
    L.push(`| ${k.startsWith('floor') ? 'floor (round-robin, no filters)' : 'Baton Scheduler'} | ${r.store} | ${r.tasks} | ${r.wall_ms} | ${r.subject === 'baton' ? `**${r.placements_per_s}**` : r.placements_per_s} | ${r.plan_only_ms ?? '—'} | ${r.mem_holding.rss_mib} / ${r.mem_holding.heap_used_mib} | ${r.mem_hwm_mib ?? '—'} | ${chk} | ${f?.placements_per_s ? r1(r.placements_per_s / f.placements_per_s) : '—'} |`);
  }
  L.push('');
  for (const store of o.config.stores) {
    const s = o[`summary_${store}`];
    if (!s) continue;
    L.push(`${store}: **${s.placements_per_s}/s** (target ≥ ${o.target_per_s}/s: ${s.meets_target ? 'met' : 'not met'}). Reference (published, not measured here): ${s.ratio_to_nomad_c1m_published}× Nomad C1M's ${o.reference_published_not_measured.nomad_c1m_per_s}/s, ${s.ratio_to_kube_scheduler_published.join('–')}× kube-scheduler's ${o.reference_published_not_measured.kube_scheduler_5000_nodes_per_s.join('–')} pods/s CI floor at 5,000 nodes.`);
  }
  return L.join('\n') + '\n';
}

// ---------------------------------------------------------------- alone / child

const self = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (self && process.argv[2] === '--child') {
  const r = await child(JSON.parse(process.argv[3]));
  process.stdout.write(JSON.stringify(r) + '\n');
  process.exit(0);
} else if (self) {
  const o = await runSchedulerBench();
  process.stdout.write(schedulerTable(o));
}
