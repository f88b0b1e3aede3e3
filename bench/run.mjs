#!/usr/bin/env node
// Baton vs PM2 (fork mode) vs the raw spawn floor, side by side in one run. See docs/benchmarks.md
// for the exact definitions. Progress on stderr, a markdown table on stdout, everything in
// bench/results/latest.json (rewritten after every section, "complete": true at the end).
//
//  1. create -> all serving HTTP, N = BENCH_SIZES (1,10,30) replicas of bench/app-http.cjs
//  2. self-heal: SIGKILL one of 3 replicas -> replacement answers HTTP
//  3. RSS of `baton up` with 1000 `sleep 3600` tasks running (BENCH_SKIP_RSS=1 skips it)
//
// Env: BENCH_REPS (5), BENCH_SIZES (1,10,30), BENCH_SKIP_RSS, BENCH_POLL_MS (10),
// BENCH_RSS_TASKS (1000), BENCH_BATON_CLI=1 (also time `baton service create --detach`),
// BENCH_HEAL_SPACED=1 (also Baton self-heal on one long-lived service, kills 10.5 s apart),
// BENCH_ONLY=create,heal,rss,mesh,updates,scheduler,cluster,docker (sections to run; docker = bench/docker.mjs, the docker driver vs Swarm vs the Engine API floor, knobs BENCH_DOCKER_* listed there, alone: `node bench/docker.mjs`; mesh = bench/mesh.mjs, mesh vs nginx;
// updates = bench/updates.mjs, rolling updates vs pm2 reload; scheduler = bench/scheduler.mjs, the
// scheduler alone in process, 150,000 tasks onto 5,000 nodes, knobs BENCH_SCHED_* listed there;
// cluster = bench/cluster.ts in a child `node --import tsx`, join and node loss on network
// namespaces, needs root, knobs BENCH_CLUSTER_* listed there; ha = bench/ha.ts in a child, API write
// latency on SQLite vs a 3-member etcd and the failover time, knobs BENCH_HA_* listed there), BENCH_OUT (result file name, latest.json), BENCH_PM2_PORT (18100), BENCH_FLOOR_PORT (18400), BENCH_TIMEOUT_S (900).
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { meshTable } from './mesh.mjs';
import { cleanupUpdates, updatesTable } from './updates.mjs';
import { schedulerTable } from './scheduler.mjs';
import { clusterTable } from './cluster-table.mjs';
import { haTable } from './ha-table.mjs';
import { cleanupDocker, dockerTable } from './docker.mjs';
import { childrenOf, cpuMs, killRecordedTasks, spawnBatonUp, stopBatonUp, isAlive, loadavg, log, memOf, now, pollUntil, probe, r1, rotate, sleep, stats, waitGone } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const BIN = path.join(ROOT, 'bin', 'baton.js');
const APP = path.join(HERE, 'app-http.cjs');
const RESULTS = path.join(HERE, 'results');

const REPS = Number(process.env.BENCH_REPS || 5);
const SIZES = (process.env.BENCH_SIZES || '1,10,30').split(',').map(Number).filter((n) => n > 0);
const ONLY = (process.env.BENCH_ONLY || 'create,heal,rss,mesh,updates,scheduler,cluster,ha,docker').split(',');
const SKIP_RSS = process.env.BENCH_SKIP_RSS === '1' || !ONLY.includes('rss');
const POLL_MS = Number(process.env.BENCH_POLL_MS || 10);
const RSS_TASKS = Number(process.env.BENCH_RSS_TASKS || 1000);
const WITH_CLI = process.env.BENCH_BATON_CLI === '1';
const HEAL_SPACED = process.env.BENCH_HEAL_SPACED === '1';
// Below the kernel's ephemeral range (32768+) so that no outgoing connection (the probes make
// thousands) can hold a port when an app binds it, and outside Baton's 20000-32000.
const PM2_PORT = Number(process.env.BENCH_PM2_PORT || 18100);
const FLOOR_PORT = Number(process.env.BENCH_FLOOR_PORT || 18400);
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S || 900);
const HEAL_REPLICAS = 3;
const HEAL_PAUSE_MS = 1500; // PM2 min_uptime is 1 s: stay above it, and give Baton the same pause
// Variables that change how fast *every* node process starts. PM2's apps inherit the daemon's
// (= this process's) whole environment while Baton's tasks get a short whitelist, so with e.g.
// NODE_EXTRA_CA_CERTS set (it is, on the project machine: +~50 ms CPU per node start) PM2 would
// be handicapped by an accident of the environment. They are removed for all subjects
// (BENCH_KEEP_ENV=1 keeps them) and the removal is recorded in the result.
const STARTUP_ENV = ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS', 'NODE_V8_COVERAGE', 'NODE_DEBUG'];
const removedEnv = process.env.BENCH_KEEP_ENV === '1' ? [] : STARTUP_ENV.filter((k) => process.env[k] !== undefined);
for (const k of removedEnv) delete process.env[k];
// The floor's children get what Baton's tasks get (src/agent/executor.ts INHERITED_ENV + PORT).
const TASK_ENV = Object.fromEntries(['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'TERM'].filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]));

// ---------------------------------------------------------------- result file

const out = { bench: 'baton-vs-pm2', complete: false, conditions: conditions(), config: { reps: REPS, sizes: SIZES, poll_ms: POLL_MS, heal_replicas: HEAL_REPLICAS, heal_pause_ms: HEAL_PAUSE_MS, rss_tasks: SKIP_RSS ? null : RSS_TASKS, app: 'bench/app-http.cjs (copy of shared/bench/peers/app-http.cjs)' } };

function conditions() {
  let commit = null;
  let srcDirty = null;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    srcDirty = execFileSync('git', ['status', '--porcelain', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
  } catch { /* not a git checkout */ }
  let tmpFs = null;
  try { tmpFs = '0x' + statfsSync(os.tmpdir()).type.toString(16); } catch { /* old node */ }
  return {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model ?? null,
    mem_gib: Math.round(os.totalmem() / 2 ** 30),
    loadavg_start: loadavg(),
    tmpdir: os.tmpdir(),
    tmpdir_fs_magic: tmpFs, // 0xef53 = ext2/3/4 (fsync hits the disk), 0x1021994 = tmpfs
    env_removed_for_all_subjects: removedEnv,
    sched_autogroup_enabled: readSysctl('/proc/sys/kernel/sched_autogroup_enabled'),
    baton_commit: commit,
    baton_src_dirty: srcDirty,
  };
}

function readSysctl(p) {
  try { return readFileSync(p, 'utf8').trim(); } catch { return null; }
}

function save(final = false) {
  mkdirSync(RESULTS, { recursive: true });
  out.conditions.loadavg_end = loadavg();
  out.conditions.date_end = new Date().toISOString();
  out.complete = final;
  const file = path.join(RESULTS, process.env.BENCH_OUT || 'latest.json');
  writeFileSync(file + '.tmp', JSON.stringify(out, null, 2) + '\n');
  renameSync(file + '.tmp', file); // atomic: latest.json is never half-written
}

// ---------------------------------------------------------------- serving checks

/** Probes every port not yet seen answering; true once all have answered at least once. */
function servingTracker() {
  const seen = new Map();
  return {
    seen,
    async check(ports) {
      await Promise.all(ports.filter((p) => !seen.has(p)).map(async (p) => {
        const b = await probe(p);
        if (b) seen.set(p, b);
      }));
      return ports.every((p) => seen.has(p));
    },
  };
}

// ---------------------------------------------------------------- Baton

class Baton {
  async start(label) {
    // The user's way to start it: `baton up` (default log level), in its own process group.
    Object.assign(this, await spawnBatonUp({ prefix: `baton-bench-${label}-`, env: { ...process.env, BATON_LOG_LEVEL: process.env.BATON_LOG_LEVEL ?? 'info' } }));
    this.pid = this.proc.pid;
    if (this.info.pid !== this.pid) log(`warning: /v1/info pid ${this.info.pid} != spawned pid ${this.pid}`);
    return this.info;
  }

  tasks(name) {
    return this.api.call('GET', `/v1/tasks?service=${encodeURIComponent(name)}`);
  }

  create(name, replicas, command, extra = {}) {
    return this.api.call('POST', '/v1/services', { name, replicas, command, workdir: HERE, ...extra });
  }

  /** DELETE the service, then wait until its processes are gone and the store holds none of its tasks. */
  async remove(name, timeoutMs = 60000) {
    const ts = await this.tasks(name).catch(() => []);
    const pids = ts.map((t) => t.status.pid).filter(Boolean);
    await this.api.call('DELETE', `/v1/services/${encodeURIComponent(name)}`).catch((e) => { if (e.status !== 404) throw e; });
    await waitGone(pids, timeoutMs, `baton service ${name}'s processes to exit`);
    await pollUntil(async () => !(await this.api.call('GET', '/v1/tasks')).some((t) => t.serviceName === name), timeoutMs, 100, `baton tasks of ${name} to be deleted`);
  }

  async stop() {
    if (!this.proc) return;
    await stopBatonUp(this, () => this.api.call('POST', '/v1/shutdown', { stopTasks: true }).catch(() => {}));
    // Anything still recorded as running under this data dir goes too (like test/harness).
    killRecordedTasks(this.dir);
    if (process.env.BENCH_KEEP_DATA !== '1') rmSync(this.dir, { recursive: true, force: true });
    this.proc = undefined;
  }
}

/** The running, wanted-running tasks of a service that have a port. */
const runningTasks = (ts) => ts.filter((t) => t.desiredState === 'running' && t.status.state === 'running' && t.status.port);

async function batonCreate(baton, n, rep, viaCli) {
  const name = `bench_c${n}_r${rep}${viaCli ? '_cli' : ''}`;
  const tr = servingTracker();
  let ack;
  let allRunning;
  let cli;
  const cpu0 = cpuMs(baton.pid);
  const t0 = now();
  if (viaCli) {
    cli = new Promise((resolve, reject) => {
      const c = spawn(process.execPath, [BIN, '-H', `unix://${baton.socket}`, 'service', 'create', '--detach', '--name', name, '--replicas', String(n), '-w', HERE, process.execPath, APP], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env } });
      let err = '';
      c.stderr.on('data', (d) => (err += d));
      c.on('exit', (code) => (code === 0 ? resolve(now() - t0) : reject(new Error(`baton service create exited ${code}: ${err}`))));
    });
    cli.then((ms) => (ack = ms), () => {});
  } else {
    await baton.create(name, n, [process.execPath, APP]);
    ack = now() - t0;
  }
  await pollUntil(async () => {
    let ts;
    try { ts = await baton.tasks(name); } catch (e) { if (e.status === 404) return false; throw e; }
    const tAt = now();
    const run = runningTasks(ts);
    const ports = run.map((t) => t.status.port);
    const complete = run.length === n && new Set(run.map((t) => t.slot)).size === n;
    if (complete && allRunning === undefined) allRunning = tAt - t0;
    // Probe what runs already, so serving is seen as early as for the peers.
    const served = await tr.check(ports);
    return complete && served;
  }, 60000, POLL_MS, `baton ${name} all serving`);
  const serving = now() - t0;
  const cpu = cpuMs(baton.pid) - cpu0;
  if (cli) await cli;
  await baton.remove(name);
  return { ack, allRunning, serving, cpu };
}

// ---------------------------------------------------------------- PM2

class Pm2 {
  async start() {
    this.home = mkdtempSync(path.join(os.tmpdir(), 'bench-pm2home-'));
    process.env.PM2_HOME = this.home; // read when pm2 is loaded
    const require = createRequire(path.join(ROOT, 'package.json'));
    this.pm2 = require('pm2');
    this.version = require('pm2/package.json').version;
    await this.call('connect');
    this.daemonPid = Number(readFileSync(path.join(this.home, 'pm2.pid'), 'utf8'));
  }

  call(fn, ...a) {
    return new Promise((resolve, reject) => this.pm2[fn](...a, (e, v) => (e ? reject(e) : resolve(v))));
  }

  async procs(name) {
    return (await this.call('list')).filter((p) => p.name === name);
  }

  startApp(name, n) {
    // Exactly shared/bench/peers/pm2.mjs startApp('fork', n).
    return this.call('start', { name, script: APP, exec_mode: 'fork', instances: n, autorestart: true, env: { PORT: String(PM2_PORT) }, increment_var: 'PORT' });
  }

  async deleteApp(name) {
    const pids = (await this.procs(name)).map((p) => p.pid).filter(Boolean);
    await this.call('delete', name).catch(() => {});
    await pollUntil(async () => (await this.procs(name)).length === 0, 30000, 50, `pm2 ${name} deleted`);
    await waitGone(pids, 30000, `pm2 ${name}'s processes to exit`);
  }

  async stop() {
    if (!this.pm2) return;
    await this.call('killDaemon').catch(() => {});
    this.pm2.disconnect();
    if (this.daemonPid) await waitGone([this.daemonPid], 10000, 'pm2 daemon to exit').catch(() => { try { process.kill(this.daemonPid, 'SIGKILL'); } catch { /* gone */ } });
    rmSync(this.home, { recursive: true, force: true });
    this.pm2 = undefined;
  }
}

async function pm2Create(pm2, n, rep) {
  const name = `bench_c${n}_r${rep}`;
  const ports = Array.from({ length: n }, (_, i) => PM2_PORT + i);
  const tr = servingTracker();
  const cpu0 = cpuMs(pm2.daemonPid);
  const t0 = now();
  await pm2.startApp(name, n);
  const ack = now() - t0;
  // Ports are known in advance (increment_var), so only HTTP is polled: PM2's daemon is not
  // queried during the measurement (that can only favour PM2).
  await pollUntil(() => tr.check(ports), 60000, POLL_MS, `pm2 ${name} all serving`);
  const serving = now() - t0;
  const cpu = cpuMs(pm2.daemonPid) - cpu0;
  await pm2.deleteApp(name);
  return { ack, serving, cpu };
}

// ---------------------------------------------------------------- spawn floor

const floorKids = new Set();

async function floorCreate(n) {
  const ports = Array.from({ length: n }, (_, i) => FLOOR_PORT + i);
  const tr = servingTracker();
  const kids = [];
  const t0 = now();
  for (const port of ports) {
    // detached (setsid) like Baton's process driver and PM2's fork mode: same scheduling
    // (each session is its own CFS autogroup when kernel.sched_autogroup_enabled=1).
    const c = spawn(process.execPath, [APP], { env: { ...TASK_ENV, PORT: String(port) }, stdio: 'ignore', detached: true });
    c.exited = new Promise((r) => c.once('exit', r));
    c.once('exit', (code, sig) => { if (!c.stopping) c.died = `exited ${code ?? sig}`; });
    floorKids.add(c);
    kids.push(c);
  }
  await pollUntil(() => {
    const dead = kids.find((c) => c.died);
    if (dead) throw new Error(`spawn floor: app on port ${FLOOR_PORT + kids.indexOf(dead)} ${dead.died} (port taken?)`);
    return tr.check(ports);
  }, 60000, POLL_MS, `spawn floor x${n} all serving`);
  const serving = now() - t0;
  for (const c of kids) { c.stopping = true; c.kill('SIGTERM'); }
  await Promise.race([Promise.all(kids.map((c) => c.exited)), sleep(10000)]);
  for (const c of kids) { if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); floorKids.delete(c); }
  await waitGone(kids.map((c) => c.pid), 10000, 'floor processes to exit');
  return { serving };
}

// ---------------------------------------------------------------- self-heal

async function batonServing(baton, name, n, timeoutMs = 60000) {
  const tr = servingTracker();
  return pollUntil(async () => {
    const run = runningTasks(await baton.tasks(name));
    return run.length === n && (await tr.check(run.map((t) => t.status.port))) && run;
  }, timeoutMs, POLL_MS, `baton ${name} serving`);
}

/** SIGKILL slot 1's process; ms until a different task runs in slot 1 and answers with its own pid. */
async function batonKillSlot1(baton, name) {
  const victim = runningTasks(await baton.tasks(name)).find((t) => t.slot === 1);
  if (!victim) throw new Error(`no running task in slot 1 of ${name}`);
  let running;
  const t0 = now();
  process.kill(victim.status.pid, 'SIGKILL');
  await pollUntil(async () => {
    const ts = await baton.tasks(name);
    const tAt = now();
    const nt = runningTasks(ts).find((t) => t.slot === 1 && t.id !== victim.id && t.status.pid);
    if (!nt) return false;
    running ??= tAt - t0;
    return (await probe(nt.status.port)) === String(nt.status.pid);
  }, 30000, POLL_MS, `baton ${name} slot 1 replaced and serving`);
  return { running, serving: now() - t0 };
}

async function batonHeal(baton, rep) {
  // A fresh service per repetition: each kill is the slot's first restart, which Baton makes at
  // once by design (backoff starts with the second short run in a row).
  const name = `bench_h_r${rep}`;
  await baton.create(name, HEAL_REPLICAS, [process.execPath, APP]);
  await batonServing(baton, name, HEAL_REPLICAS);
  await sleep(HEAL_PAUSE_MS);
  const r = await batonKillSlot1(baton, name);
  await baton.remove(name);
  return r;
}

async function pm2HealSeries(pm2, n) {
  const name = `bench_h_x${n}`;
  await pm2.startApp(name, n);
  const tr = servingTracker();
  await pollUntil(() => tr.check(Array.from({ length: n }, (_, i) => PM2_PORT + i)), 60000, POLL_MS, `pm2 ${name} serving`);
  const online = [];
  const serving = [];
  for (let i = 0; i < REPS; i++) {
    await sleep(HEAL_PAUSE_MS);
    const victim = (await pm2.procs(name)).sort((a, b) => a.pm_id - b.pm_id)[0];
    const port = Number(victim.pm2_env.PORT ?? victim.pm2_env.env?.PORT);
    let back;
    const t0 = now();
    process.kill(victim.pid, 'SIGKILL');
    await pollUntil(async () => {
      if (back === undefined) {
        const ps = await pm2.procs(name);
        const tAt = now();
        const p = ps.find((x) => x.pm_id === victim.pm_id && x.pid && x.pid !== victim.pid && x.pm2_env.status === 'online');
        if (!p) return false;
        back = { ms: tAt - t0, pid: p.pid };
      }
      return (await probe(port)) === String(back.pid);
    }, 30000, POLL_MS, `pm2 ${name} pm_id ${victim.pm_id} back and serving`);
    serving.push(now() - t0);
    online.push(back.ms);
    log(`heal pm2 fork x${n} rep ${i}: online ${r1(back.ms)} serving ${r1(serving.at(-1))} ms`);
  }
  await pm2.deleteApp(name);
  return { back_online_ms: stats(online), serving_again_ms: stats(serving) };
}

// ---------------------------------------------------------------- RSS with 1000 tasks

/**
 * On a fresh `baton up`: create one service of `sleep 3600` with steps[0] replicas, scale it to
 * each further step, and wait each time until that many run. Gives up (ok: false) when the store
 * marks the node down (the dispatcher does that after ~5 s without a heartbeat: an event loop
 * stalled that long orphans every task) or after the deadline. Then removes the service and waits
 * until `baton up` has no child process left.
 */
async function rssAttempt(label, steps, deadlineMs) {
  const b = new Baton();
  subjects.rss = b;
  await b.start(label);
  await sleep(1000);
  const res = { steps, idle: memOf(b.pid) };
  const name = 'bench_rss';
  const cpu0 = cpuMs(b.pid);
  const t0 = now();
  const deadline = t0 + deadlineMs;
  let peak = res.idle.rss_mib;
  let lastRunning = 0;
  let maxLatency = 0;
  res.step_ms = [];
  try {
    for (const [i, target] of steps.entries()) {
      if (i === 0) {
        await b.create(name, target, ['sleep', '3600'], { stopGracePeriod: '2s' });
        res.api_ack_ms = r1(now() - t0);
      } else {
        await b.api.call('POST', `/v1/services/${name}/scale`, { replicas: target });
      }
      let progress = lastRunning;
      await pollUntil(async () => {
        const tq = now();
        const svc = await b.api.call('GET', `/v1/services/${name}`);
        // A request answered late means `baton up`'s event loop was blocked that long.
        maxLatency = Math.max(maxLatency, now() - tq);
        peak = Math.max(peak, memOf(b.pid).rss_mib);
        lastRunning = svc.status.running;
        if (lastRunning >= progress + 250) { progress = lastRunning; log(`rss ${label}: ${lastRunning}/${target} running after ${Math.round(now() - t0)} ms`); }
        if (lastRunning === target) return true;
        if (now() > deadline) throw new Error(`deadline ${deadlineMs} ms passed with ${lastRunning}/${target} running`);
        return false;
      }, deadlineMs + 5000, 100, `${target} tasks running`);
      res.step_ms.push(r1(now() - t0));
    }
    res.ok = true;
    res.all_running_ms = res.step_ms.at(-1);
    res.states = await taskStates(b, name);
    res.cpu_ms_to_all_running = cpuMs(b.pid) - cpu0;
    res.at_all_running = memOf(b.pid);
    res.alive_task_processes = childrenOf(b.pid).length;
    await sleep(3000);
    res.settled_3s = memOf(b.pid);
  } catch (err) {
    res.ok = false;
    res.error = String(err.message ?? err);
    res.max_running_seen = lastRunning;
    res.failed_after_ms = r1(now() - t0);
    res.cpu_ms_until_failure = cpuMs(b.pid) - cpu0;
    res.at_failure = memOf(b.pid);
    res.states = await taskStates(b, name).catch(() => null);
    log(`rss ${label}: FAILED: ${res.error}`);
  }
  res.max_api_latency_ms = r1(maxLatency);
  // The dispatcher logs this each time it marks the node down (all its tasks become orphaned).
  res.node_down_events = (b.logTail(Infinity).match(/node down: missed heartbeats/g) ?? []).length;
  res.orphaned_tasks = res.states?.orphaned ?? 0;
  res.clean = res.ok && res.node_down_events === 0 && res.orphaned_tasks === 0;
  if (res.node_down_events) log(`rss ${label}: node marked down ${res.node_down_events} times; task states ${JSON.stringify(res.states)}`);
  res.rss_sampled_peak_mib = Math.max(peak, res.settled_3s?.rss_mib ?? 0);
  const t1 = now();
  await b.api.call('DELETE', `/v1/services/${name}`).catch(() => {});
  await pollUntil(() => childrenOf(b.pid).length === 0, 180000, 100, `baton's ${label} task processes to exit`);
  res.rm_to_all_gone_ms = r1(now() - t1);
  res.after_rm = memOf(b.pid);
  await b.stop();
  subjects.rss = undefined;
  if (res.ok) log(`rss ${label}: idle ${res.idle.rss_mib} MiB, ${steps.at(-1)} running ${res.settled_3s.rss_mib} MiB (hwm ${res.settled_3s.hwm_mib}), all running after ${res.all_running_ms} ms, rm->gone ${res.rm_to_all_gone_ms} ms`);
  return res;
}

/** Task count per status.state (ended tasks included) of one service. */
async function taskStates(b, name) {
  return (await b.tasks(name)).reduce((m, t) => ((m[t.status.state] = (m[t.status.state] ?? 0) + 1), m), {});
}

async function rssSection() {
  const out = { tasks: RSS_TASKS, command: ['sleep', '3600'], fresh_baton_per_attempt: true };
  // As asked: one service created with all replicas at once.
  out.direct = await rssAttempt('direct', [RSS_TASKS], Number(process.env.BENCH_RSS_DEADLINE_S || 90) * 1000);
  if (!out.direct.clean) {
    // Fallback, so that the RSS with RSS_TASKS running is still measured without thousands of
    // orphaned tasks in the store: create 250, then scale up by 250 at a time.
    const step = Number(process.env.BENCH_RSS_STEP || 250);
    const steps = [];
    for (let k = step; k < RSS_TASKS; k += step) steps.push(k);
    steps.push(RSS_TASKS);
    out.stepwise = await rssAttempt('stepwise', steps, 240000);
  }
  return out;
}

// ---------------------------------------------------------------- main

const subjects = {};
let cleaning;
function cleanupAll() {
  cleaning ??= (async () => {
    for (const c of floorKids) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
    await Promise.allSettled([subjects.baton?.stop(), subjects.rss?.stop(), subjects.pm2?.stop(), cleanupUpdates(), stopTsChildren(), cleanupDocker()]);
  })();
  return cleaning;
}
const abort = (why, code) => { log(`aborting: ${why}`); void cleanupAll().finally(() => process.exit(code)); };
process.once('SIGINT', () => abort('SIGINT', 130));
process.once('SIGTERM', () => abort('SIGTERM', 143));
const watchdog = setTimeout(() => abort(`global timeout ${TIMEOUT_S} s`, 3), TIMEOUT_S * 1000);

const fmt = (s) => (s && s.n ? `${s.median} [${s.min}–${s.max}]` : '—');
const ratio = (a, b) => {
  if (!a?.n || !b?.n) return null;
  const x = a.median / b.median;
  return x < 0.1 ? Math.round(x * 1000) / 1000 : Math.round(x * 100) / 100;
};

async function main() {
  const t00 = now();
  log(`bench: reps ${REPS}, sizes ${SIZES.join(',')}, poll ${POLL_MS} ms, node ${process.version}, load ${loadavg().join(' ')}`);
  if (ONLY.includes('create') || ONLY.includes('heal')) {
    const baton = (subjects.baton = new Baton());
    const info = await baton.start('main');
    out.conditions.baton_version = info.version;
    await createAndHeal(baton);
    subjects.baton = undefined;
  }

  // 3. RSS with 1000 tasks, on a fresh `baton up`.
  if (!SKIP_RSS) {
    out.rss = await rssSection();
    save();
  }
  // 4. Mesh data plane vs nginx (its own result file too: results/mesh-latest.json).
  if (ONLY.includes('mesh')) {
    const { runMeshBench } = await import('./mesh.mjs');
    out.mesh = await runMeshBench();
    save();
  }
  // 5. Rolling updates vs pm2 reload (its own result file too: results/updates-latest.json).
  if (ONLY.includes('updates')) {
    const { runUpdatesBench } = await import('./updates.mjs');
    out.updates = await runUpdatesBench();
    save();
  }
  // 6. The scheduler alone, in process (its own result file too: results/scheduler-latest.json).
  if (ONLY.includes('scheduler')) {
    const { runSchedulerBench } = await import('./scheduler.mjs');
    out.scheduler = await runSchedulerBench();
    save();
  }
  // 7. Multi-node on network namespaces (its own result file too: results/cluster-latest.json).
  if (ONLY.includes('cluster')) {
    out.cluster = await runTsChild('cluster', 'cluster.ts', 'network namespaces, needs root');
    save();
  }
  // 8. HA: write latency SQLite vs etcd, failover (its own result file too: results/ha-latest.json).
  if (ONLY.includes('ha')) {
    out.ha = await runTsChild('ha', 'ha.ts', 'SQLite vs a 3-member etcd, needs /usr/bin/etcd');
    save();
  }
  // 9. The docker driver vs Swarm vs the Engine API floor (its own result file too: results/docker-latest.json).
  if (ONLY.includes('docker')) {
    const { runDockerBench } = await import('./docker.mjs');
    out.docker = await runDockerBench().catch((err) => ({ bench: 'docker', error: String(err?.message ?? err) }));
    if (out.docker.error) log(`docker: ${out.docker.error}`);
    save();
  }
  out.total_s = r1((now() - t00) / 1000);
  save(true);
  if (process.env.BENCH_ARCHIVE !== '0' && !process.env.BENCH_OUT) writeFileSync(path.join(RESULTS, `run-${out.conditions.date.replace(/[:.]/g, '-')}.json`), JSON.stringify(out, null, 2) + '\n');
  printTable();
}

/**
 * A section written in TypeScript (bench/cluster.ts, bench/ha.ts: their harnesses are) in a
 * child: progress on our stderr, the result as the last line of its stdout. A failure (e.g. not
 * root, no etcd) is recorded, not fatal.
 */
const tsChildren = new Set();
function runTsChild(bench, file, note) {
  log(`${bench}: node --import tsx bench/${file} (${note})…`);
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['--import', 'tsx', path.join(HERE, file)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    tsChildren.add(c);
    let stdout = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.on('exit', (code, sig) => {
      tsChildren.delete(c);
      let res;
      try { res = JSON.parse(stdout.trim().split('\n').at(-1)); } catch { res = { bench, error: `bench/${file} exited ${code ?? sig} without a result` }; }
      if (code !== 0 && !res.error) res.error = `bench/${file} exited ${code ?? sig}`;
      if (res.error) log(`${bench}: ${res.error}`);
      resolve(res);
    });
  });
}

/** SIGTERM to the TypeScript sections: their harnesses kill what they started (namespaces, etcd, baton). */
async function stopTsChildren() {
  await Promise.all([...tsChildren].map(async (c) => {
    if (c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await Promise.race([gone, sleep(20000)]);
  }));
}

async function createAndHeal(baton) {
  out.conditions.baton_data_dir = 'mkdtemp under ' + os.tmpdir();
  const pm2 = (subjects.pm2 = new Pm2());
  await pm2.start();
  out.conditions.pm2 = pm2.version;
  // Warm-up (not recorded): first spawn of node, first service, first PM2 app.
  await floorCreate(1);
  await batonCreate(baton, 1, 'warm', false);
  await pm2Create(pm2, 1, 'warm');

  // 1. create -> all serving, subjects interleaved per repetition.
  if (ONLY.includes('create')) out.create = {};
  for (const n of ONLY.includes('create') ? SIZES : []) {
    const rows = { baton: [], pm2: [], floor: [], baton_cli: [] };
    for (let i = 0; i < REPS; i++) {
      const order = rotate(['baton', 'pm2', 'floor', ...(WITH_CLI ? ['baton_cli'] : [])], i);
      for (const who of order) {
        let r;
        if (who === 'baton') r = await batonCreate(baton, n, i, false);
        else if (who === 'baton_cli') r = await batonCreate(baton, n, i, true);
        else if (who === 'pm2') r = await pm2Create(pm2, n, i);
        else r = await floorCreate(n);
        rows[who].push(r);
        log(`create x${n} rep ${i} ${who}: serving ${r1(r.serving)} ms${r.allRunning !== undefined ? ` (all running ${r1(r.allRunning)})` : ''}${r.ack !== undefined ? ` ack ${r1(r.ack)}` : ''}${Number.isFinite(r.cpu) ? ` cpu ${r.cpu} ms` : ''}`);
        await sleep(200);
      }
    }
    const col = (rs, k) => stats(rs.map((r) => r[k]));
    const c = {
      baton: { api_ack_ms: col(rows.baton, 'ack'), all_running_ms: col(rows.baton, 'allRunning'), all_serving_ms: col(rows.baton, 'serving'), baton_up_cpu_ms: col(rows.baton, 'cpu') },
      pm2_fork: { api_return_ms: col(rows.pm2, 'ack'), all_serving_ms: col(rows.pm2, 'serving'), daemon_cpu_ms: col(rows.pm2, 'cpu') },
      spawn_floor: { all_serving_ms: col(rows.floor, 'serving') },
    };
    if (WITH_CLI) c.baton_cli = { cli_exit_ms: col(rows.baton_cli, 'ack'), all_running_ms: col(rows.baton_cli, 'allRunning'), all_serving_ms: col(rows.baton_cli, 'serving') };
    c.ratio_baton_pm2 = ratio(c.baton.all_serving_ms, c.pm2_fork.all_serving_ms);
    c.ratio_baton_floor = ratio(c.baton.all_serving_ms, c.spawn_floor.all_serving_ms);
    c.ratio_pm2_floor = ratio(c.pm2_fork.all_serving_ms, c.spawn_floor.all_serving_ms);
    out.create[`x${n}`] = c;
    log(`create x${n}: baton ${fmt(c.baton.all_serving_ms)} pm2 ${fmt(c.pm2_fork.all_serving_ms)} floor ${fmt(c.spawn_floor.all_serving_ms)} -> baton/pm2 ${c.ratio_baton_pm2}`);
    save();
  }

  if (ONLY.includes('heal')) await heal(baton, pm2);
  out.baton_up_after_create_and_heal = memOf(baton.pid);
  await baton.stop();
  await pm2.stop();
  subjects.pm2 = undefined;
}

async function heal(baton, pm2) {
  const bRun = [];
  const bServe = [];
  for (let i = 0; i < REPS; i++) {
    const r = await batonHeal(baton, i);
    bRun.push(r.running);
    bServe.push(r.serving);
    log(`heal baton x${HEAL_REPLICAS} rep ${i}: running ${r1(r.running)} serving ${r1(r.serving)} ms`);
  }
  out.heal = {
    baton: { method: 'fresh 3-replica service per repetition; SIGKILL slot 1 after 1.5 s', replacement_running_ms: stats(bRun), replacement_serving_ms: stats(bServe) },
    pm2_fork_x3: await pm2HealSeries(pm2, HEAL_REPLICAS),
    pm2_fork_x1: await pm2HealSeries(pm2, 1),
  };
  if (HEAL_SPACED) {
    const name = 'bench_h_spaced';
    await baton.create(name, HEAL_REPLICAS, [process.execPath, APP]);
    await batonServing(baton, name, HEAL_REPLICAS);
    const run = [];
    const serve = [];
    for (let i = 0; i < REPS; i++) {
      await sleep(10500); // past BACKOFF_RESET_MS (10 s): the streak restarts, the restart is immediate
      const r = await batonKillSlot1(baton, name);
      run.push(r.running);
      serve.push(r.serving);
      log(`heal baton spaced rep ${i}: running ${r1(r.running)} serving ${r1(r.serving)} ms`);
    }
    await baton.remove(name);
    out.heal.baton_spaced = { method: 'one 3-replica service; SIGKILL slot 1 every 10.5 s', replacement_running_ms: stats(run), replacement_serving_ms: stats(serve) };
  }
  out.heal.ratio_baton_pm2_x3 = ratio(out.heal.baton.replacement_serving_ms, out.heal.pm2_fork_x3.serving_again_ms);
  out.heal.ratio_baton_pm2_x1 = ratio(out.heal.baton.replacement_serving_ms, out.heal.pm2_fork_x1.serving_again_ms);
  save();
}

function printTable() {
  const L = [];
  if (out.create || out.heal || out.rss) {
  L.push(`Baton vs PM2 ${out.conditions.pm2 ?? ''} (fork) vs spawn floor — ${out.conditions.date}, node ${out.conditions.node}, ${out.conditions.cpus} CPUs, load ${out.conditions.loadavg_start.join('/')} → ${out.conditions.loadavg_end.join('/')}, ${REPS} reps, poll ${POLL_MS} ms. median [min–max] ms; ratio = Baton median / peer median (< 1: Baton faster).`);
  L.push('');
  L.push('| measurement | Baton | PM2 fork | spawn floor | Baton/PM2 | Baton/floor |');
  L.push('|---|---|---|---|---|---|');
  const sizes = out.create ? SIZES : [];
  for (const n of sizes) {
    const c = out.create[`x${n}`];
    L.push(`| create → all serving HTTP, N=${n} (ms) | ${fmt(c.baton.all_serving_ms)} | ${fmt(c.pm2_fork.all_serving_ms)} | ${fmt(c.spawn_floor.all_serving_ms)} | **${c.ratio_baton_pm2}** | ${c.ratio_baton_floor} |`);
  }
  for (const n of sizes) {
    const c = out.create[`x${n}`];
    L.push(`| create → API answered, N=${n} (ms) | ${fmt(c.baton.api_ack_ms)} | ${fmt(c.pm2_fork.api_return_ms)} | — | ${ratio(c.baton.api_ack_ms, c.pm2_fork.api_return_ms)} | — |`);
  }
  if (WITH_CLI) for (const n of sizes) {
    const c = out.create[`x${n}`];
    L.push(`| create via \`baton service create --detach\` → all serving, N=${n} (ms) | ${fmt(c.baton_cli.all_serving_ms)} | ${fmt(c.pm2_fork.all_serving_ms)} | ${fmt(c.spawn_floor.all_serving_ms)} | ${ratio(c.baton_cli.all_serving_ms, c.pm2_fork.all_serving_ms)} | ${ratio(c.baton_cli.all_serving_ms, c.spawn_floor.all_serving_ms)} |`);
  }
  const h = out.heal;
  const floor1 = out.create?.x1?.spawn_floor.all_serving_ms;
  if (h) {
  L.push(`| self-heal: SIGKILL → replacement serving, 3 replicas (ms) | ${fmt(h.baton.replacement_serving_ms)} | ${fmt(h.pm2_fork_x3.serving_again_ms)} | ${fmt(floor1)}¹ | **${h.ratio_baton_pm2_x3}** | ${ratio(h.baton.replacement_serving_ms, floor1) ?? '—'} |`);
  L.push(`| self-heal: SIGKILL → replacement running / online, 3 replicas (ms) | ${fmt(h.baton.replacement_running_ms)} | ${fmt(h.pm2_fork_x3.back_online_ms)} | — | ${ratio(h.baton.replacement_running_ms, h.pm2_fork_x3.back_online_ms)} | — |`);
  L.push(`| self-heal: SIGKILL → serving, PM2 fork x1 (ms) | ${fmt(h.baton.replacement_serving_ms)} | ${fmt(h.pm2_fork_x1.serving_again_ms)} | — | ${h.ratio_baton_pm2_x1} | — |`);
  if (h.baton_spaced) L.push(`| self-heal, one service, kills 10.5 s apart → serving (ms) | ${fmt(h.baton_spaced.replacement_serving_ms)} | ${fmt(h.pm2_fork_x3.serving_again_ms)} | — | ${ratio(h.baton_spaced.replacement_serving_ms, h.pm2_fork_x3.serving_again_ms)} | — |`);
  }
  if (out.rss) {
    const r = out.rss;
    const d = r.direct;
    const w = r.stepwise;
    const okRun = d.clean ? d : w?.clean ? w : d.ok ? d : undefined;
    const ran = (a) => (a.ok ? `${a.all_running_ms}${a.clean ? '' : ` — **only after the node was marked down ${a.node_down_events} × (${a.orphaned_tasks} orphaned tasks kept)**`}` : `**failed**: ${a.error}${a.node_down_events ? ` (node marked down ${a.node_down_events} ×, ${a.orphaned_tasks} orphaned tasks kept)` : ''}`);
    L.push(`| \`baton up\` RSS idle, fresh (MiB) | ${d.idle.rss_mib} | — | — | — | — |`);
    L.push(`| create 1 service × ${r.tasks} \`sleep 3600\` → all running (ms) | ${ran(d)} | — | — | — | — |`);
    if (w) L.push(`| same, created at ${w.steps[0]} then scaled +${w.steps[1] - w.steps[0]} at a time → all running (ms) | ${ran(w)} | — | — | — | — |`);
    if (okRun) {
      L.push(`| \`baton up\` RSS, ${r.tasks} tasks running${okRun === w ? ' (stepwise run)' : ''} (MiB; VmHWM) | ${okRun.settled_3s.rss_mib} (${okRun.settled_3s.hwm_mib}) | — | — | — | — |`);
      L.push(`| rm ${r.tasks} tasks → all processes gone${okRun === w ? ' (stepwise run)' : ''} (ms) | ${okRun.rm_to_all_gone_ms} | — | — | — | — |`);
    }
    if (!d.clean) L.push(`| \`baton up\` RSS at the end of the direct attempt (MiB; VmHWM) | ${(d.settled_3s ?? d.at_failure).rss_mib} (${(d.settled_3s ?? d.at_failure).hwm_mib}) | — | — | — | — |`);
  }
  L.push('');
  }
  if (out.mesh) L.push(meshTable(out.mesh));
  if (out.updates) L.push(updatesTable(out.updates));
  if (out.scheduler) L.push(schedulerTable(out.scheduler));
  if (out.cluster) L.push(clusterTable(out.cluster));
  if (out.ha) L.push(haTable(out.ha));
  if (out.docker && !out.docker.error) L.push(dockerTable(out.docker));
  if (out.heal) L.push('¹ spawn floor for one process (the create N=1 row): a restart cannot beat it.');
  process.stdout.write(L.join('\n') + '\n');
}

try {
  await main();
  clearTimeout(watchdog);
  await cleanupAll();
  process.exit(0);
} catch (err) {
  log(`bench failed: ${err?.stack ?? err}`);
  out.error = String(err?.message ?? err);
  try { save(); } catch { /* keep the original error */ }
  clearTimeout(watchdog);
  await cleanupAll();
  process.exit(1);
}
