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
// BENCH_PM2_PORT (39100), BENCH_FLOOR_PORT (39400), BENCH_TIMEOUT_S (900).
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { batonApi, cpuMs, isAlive, loadavg, log, memOf, now, pollUntil, probe, r1, rotate, sleep, stats, waitGone } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const BIN = path.join(ROOT, 'bin', 'baton.js');
const APP = path.join(HERE, 'app-http.cjs');
const RESULTS = path.join(HERE, 'results');

const REPS = Number(process.env.BENCH_REPS || 5);
const SIZES = (process.env.BENCH_SIZES || '1,10,30').split(',').map(Number).filter((n) => n > 0);
const SKIP_RSS = process.env.BENCH_SKIP_RSS === '1';
const POLL_MS = Number(process.env.BENCH_POLL_MS || 10);
const RSS_TASKS = Number(process.env.BENCH_RSS_TASKS || 1000);
const WITH_CLI = process.env.BENCH_BATON_CLI === '1';
const HEAL_SPACED = process.env.BENCH_HEAL_SPACED === '1';
const PM2_PORT = Number(process.env.BENCH_PM2_PORT || 39100);
const FLOOR_PORT = Number(process.env.BENCH_FLOOR_PORT || 39400);
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
  const file = path.join(RESULTS, 'latest.json');
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
    this.dir = mkdtempSync(path.join(os.tmpdir(), `baton-bench-${label}-`));
    this.socket = path.join(this.dir, 'baton.sock');
    const fd = openSync(path.join(this.dir, 'baton-up.log'), 'a');
    // The user's way to start it: `baton up` (default log level), in its own process group.
    this.proc = spawn(process.execPath, [BIN, 'up', '--data-dir', this.dir], { detached: true, stdio: ['ignore', fd, fd], cwd: ROOT, env: { ...process.env, BATON_LOG_LEVEL: process.env.BATON_LOG_LEVEL ?? 'info' } });
    closeSync(fd);
    this.exited = new Promise((r) => this.proc.once('exit', r));
    this.api = batonApi(this.socket);
    const info = await pollUntil(async () => existsSync(this.socket) && (await this.api.call('GET', '/v1/info').catch(() => null)), 30000, 50, 'baton up to answer');
    this.pid = this.proc.pid;
    if (info.pid !== this.pid) log(`warning: /v1/info pid ${info.pid} != spawned pid ${this.pid}`);
    return info;
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
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      await this.api.call('POST', '/v1/shutdown', { stopTasks: true }).catch(() => {});
      await Promise.race([this.exited, sleep(20000)]);
      if (this.proc.exitCode === null && this.proc.signalCode === null) {
        try { process.kill(-this.proc.pid, 'SIGKILL'); } catch { /* gone */ }
        await Promise.race([this.exited, sleep(5000)]);
      }
    }
    this.api.close();
    // Anything still recorded as running under this data dir goes too (like test/harness).
    const records = path.join(this.dir, 'agent', 'tasks');
    if (existsSync(records)) {
      for (const f of readdirSync(records)) {
        try { process.kill(-JSON.parse(readFileSync(path.join(records, f), 'utf8')).handle.pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
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
    floorKids.add(c);
    kids.push(c);
  }
  await pollUntil(() => tr.check(ports), 60000, POLL_MS, `spawn floor x${n} all serving`);
  const serving = now() - t0;
  for (const c of kids) c.kill('SIGTERM');
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

async function rssSection() {
  const b = new Baton();
  subjects.rss = b;
  await b.start('rss');
  await sleep(1000);
  const res = { tasks: RSS_TASKS, command: ['sleep', '3600'], fresh_baton: true };
  res.idle = memOf(b.pid);
  const name = 'bench_rss';
  const cpu0 = cpuMs(b.pid);
  const t0 = now();
  await b.create(name, RSS_TASKS, ['sleep', '3600'], { stopGracePeriod: '2s' });
  res.api_ack_ms = r1(now() - t0);
  let peak = 0;
  let progress = 0;
  await pollUntil(async () => {
    const s = await b.api.call('GET', `/v1/services/${name}`);
    peak = Math.max(peak, memOf(b.pid).rss_mib);
    if (s.status.running >= progress + 250) { progress = s.status.running; log(`rss: ${progress}/${RSS_TASKS} running after ${Math.round(now() - t0)} ms`); }
    return s.status.running === RSS_TASKS;
  }, 240000, 50, `${RSS_TASKS} tasks running`);
  res.all_running_ms = r1(now() - t0);
  res.cpu_ms_to_all_running = cpuMs(b.pid) - cpu0;
  res.at_all_running = memOf(b.pid);
  const pids = (await b.tasks(name)).map((t) => t.status.pid).filter(Boolean);
  res.alive_task_processes = pids.filter(isAlive).length;
  await sleep(3000);
  res.settled_3s = memOf(b.pid);
  res.rss_sampled_peak_mib = Math.max(peak, res.settled_3s.rss_mib);
  const t1 = now();
  await b.remove(name, 180000);
  res.rm_to_all_gone_ms = r1(now() - t1);
  res.after_rm = memOf(b.pid);
  log(`rss: idle ${res.idle.rss_mib} MiB, ${RSS_TASKS} running ${res.settled_3s.rss_mib} MiB (hwm ${res.settled_3s.hwm_mib}), all running after ${res.all_running_ms} ms, rm->gone ${res.rm_to_all_gone_ms} ms`);
  await b.stop();
  subjects.rss = undefined;
  return res;
}

// ---------------------------------------------------------------- main

const subjects = {};
let cleaning;
function cleanupAll() {
  cleaning ??= (async () => {
    for (const c of floorKids) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
    await Promise.allSettled([subjects.baton?.stop(), subjects.rss?.stop(), subjects.pm2?.stop()]);
  })();
  return cleaning;
}
const abort = (why, code) => { log(`aborting: ${why}`); void cleanupAll().finally(() => process.exit(code)); };
process.once('SIGINT', () => abort('SIGINT', 130));
process.once('SIGTERM', () => abort('SIGTERM', 143));
const watchdog = setTimeout(() => abort(`global timeout ${TIMEOUT_S} s`, 3), TIMEOUT_S * 1000);

const fmt = (s) => (s && s.n ? `${s.median} [${s.min}–${s.max}]` : '—');
const ratio = (a, b) => (a?.n && b?.n ? Math.round((a.median / b.median) * 100) / 100 : null);

async function main() {
  const t00 = now();
  log(`bench: reps ${REPS}, sizes ${SIZES.join(',')}, poll ${POLL_MS} ms, node ${process.version}, load ${loadavg().join(' ')}`);
  const baton = (subjects.baton = new Baton());
  const info = await baton.start('main');
  out.conditions.baton_version = info.version;
  out.conditions.baton_data_dir = 'mkdtemp under ' + os.tmpdir();
  const pm2 = (subjects.pm2 = new Pm2());
  await pm2.start();
  out.conditions.pm2 = pm2.version;
  // Warm-up (not recorded): first spawn of node, first service, first PM2 app.
  await floorCreate(1);
  await batonCreate(baton, 1, 'warm', false);
  await pm2Create(pm2, 1, 'warm');

  // 1. create -> all serving, subjects interleaved per repetition.
  out.create = {};
  for (const n of SIZES) {
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

  // 2. self-heal.
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

  out.baton_up_after_create_and_heal = memOf(baton.pid);
  await baton.stop();
  subjects.baton = undefined;
  await pm2.stop();
  subjects.pm2 = undefined;

  // 3. RSS with 1000 tasks, on a fresh `baton up`.
  if (!SKIP_RSS) {
    out.rss = await rssSection();
    save();
  }
  out.total_s = r1((now() - t00) / 1000);
  save(true);
  printTable();
}

function printTable() {
  const L = [];
  L.push(`Baton vs PM2 ${out.conditions.pm2} (fork) vs spawn floor — ${out.conditions.date}, node ${out.conditions.node}, ${out.conditions.cpus} CPUs, load ${out.conditions.loadavg_start.join('/')} → ${out.conditions.loadavg_end.join('/')}, ${REPS} reps, poll ${POLL_MS} ms. median [min–max] ms; ratio = Baton median / peer median (< 1: Baton faster).`);
  L.push('');
  L.push('| measurement | Baton | PM2 fork | spawn floor | Baton/PM2 | Baton/floor |');
  L.push('|---|---|---|---|---|---|');
  for (const n of SIZES) {
    const c = out.create[`x${n}`];
    L.push(`| create → all serving HTTP, N=${n} (ms) | ${fmt(c.baton.all_serving_ms)} | ${fmt(c.pm2_fork.all_serving_ms)} | ${fmt(c.spawn_floor.all_serving_ms)} | **${c.ratio_baton_pm2}** | ${c.ratio_baton_floor} |`);
  }
  for (const n of SIZES) {
    const c = out.create[`x${n}`];
    L.push(`| create → API answered, N=${n} (ms) | ${fmt(c.baton.api_ack_ms)} | ${fmt(c.pm2_fork.api_return_ms)} | — | ${ratio(c.baton.api_ack_ms, c.pm2_fork.api_return_ms)} | — |`);
  }
  if (WITH_CLI) for (const n of SIZES) {
    const c = out.create[`x${n}`];
    L.push(`| create via \`baton service create --detach\` → all serving, N=${n} (ms) | ${fmt(c.baton_cli.all_serving_ms)} | ${fmt(c.pm2_fork.all_serving_ms)} | ${fmt(c.spawn_floor.all_serving_ms)} | ${ratio(c.baton_cli.all_serving_ms, c.pm2_fork.all_serving_ms)} | ${ratio(c.baton_cli.all_serving_ms, c.spawn_floor.all_serving_ms)} |`);
  }
  const h = out.heal;
  const floor1 = out.create.x1?.spawn_floor.all_serving_ms;
  L.push(`| self-heal: SIGKILL → replacement serving, 3 replicas (ms) | ${fmt(h.baton.replacement_serving_ms)} | ${fmt(h.pm2_fork_x3.serving_again_ms)} | ${fmt(floor1)}¹ | **${h.ratio_baton_pm2_x3}** | ${ratio(h.baton.replacement_serving_ms, floor1) ?? '—'} |`);
  L.push(`| self-heal: SIGKILL → replacement running / online, 3 replicas (ms) | ${fmt(h.baton.replacement_running_ms)} | ${fmt(h.pm2_fork_x3.back_online_ms)} | — | ${ratio(h.baton.replacement_running_ms, h.pm2_fork_x3.back_online_ms)} | — |`);
  L.push(`| self-heal: SIGKILL → serving, PM2 fork x1 (ms) | ${fmt(h.baton.replacement_serving_ms)} | ${fmt(h.pm2_fork_x1.serving_again_ms)} | — | ${h.ratio_baton_pm2_x1} | — |`);
  if (h.baton_spaced) L.push(`| self-heal, one service, kills 10.5 s apart → serving (ms) | ${fmt(h.baton_spaced.replacement_serving_ms)} | ${fmt(h.pm2_fork_x3.serving_again_ms)} | — | ${ratio(h.baton_spaced.replacement_serving_ms, h.pm2_fork_x3.serving_again_ms)} | — |`);
  if (out.rss) {
    const r = out.rss;
    L.push(`| \`baton up\` RSS idle (MiB) | ${r.idle.rss_mib} | — | — | — | — |`);
    L.push(`| \`baton up\` RSS, ${r.tasks} tasks running (MiB; VmHWM) | ${r.settled_3s.rss_mib} (${r.settled_3s.hwm_mib}) | — | — | — | — |`);
    L.push(`| create ${r.tasks} \`sleep\` tasks → all running (ms) | ${r.all_running_ms} | — | — | — | — |`);
    L.push(`| rm ${r.tasks} tasks → all processes gone (ms) | ${r.rm_to_all_gone_ms} | — | — | — | — |`);
  }
  L.push('');
  L.push('¹ spawn floor for one process (the create N=1 row): a restart cannot beat it.');
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
