#!/usr/bin/env node
// Rolling updates: Baton (through its routing mesh) vs PM2 7 cluster mode (`pm2 reload`), one run,
// subjects interleaved per repetition. See docs/benchmarks.md ("Rolling updates") for the exact
// definitions. Progress on stderr, a markdown table on stdout, bench/results/updates-latest.json
// (rewritten after every measurement, "complete": true at the end).
//
//  1. failed requests during a rolling update of 4 replicas under the same keep-alive load:
//     Baton `service update --env-add VERSION=n --update-parallelism 2 --update-monitor 0s` vs
//     `pm2 reload <app> --update-env` (naive app, and the graceful variant of the same app)
//  2. time of a 10-replica rolling update: Baton `--update-parallelism 2 --update-delay 0s
//     --update-monitor 0s` (command → exit 0) vs `pm2 reload` of 10 cluster instances (command → exit)
//
// Both subjects are driven through their user-facing CLIs (`node bin/baton.js`, pm2's bin), with
// the same Node (process.execPath) and the same app (bench/app-http.cjs, listens on $PORT).
// Env: BENCH_REPS (3), BENCH_UPD_CONC (4 keep-alive loops), BENCH_UPD_LEAD_MS (1000),
// BENCH_UPD_TAIL_MS (1000), BENCH_UPD_BATON_PORT (18600, 18601), BENCH_UPD_PM2_PORT (18700..18702),
// BENCH_UPD_TIMEOUT_S (600, whole run when alone), BENCH_KEEP_DATA=1 (keep baton's data dir).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { childrenOf, isAlive, killRecordedTasks, loadavg, log, now, pollUntil, probe, r1, rotate, saveResults, sleep, spawnBatonUp, stats, stopBatonUp } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const BIN = path.join(ROOT, 'bin', 'baton.js');
const APP = path.join(HERE, 'app-http.cjs');
const RESULTS = path.join(HERE, 'results');
const PM2_BIN = path.join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');

const REPS = Number(process.env.BENCH_REPS || 3);
const CONC = Number(process.env.BENCH_UPD_CONC || 4);
const LEAD_MS = Number(process.env.BENCH_UPD_LEAD_MS || 1000);
const TAIL_MS = Number(process.env.BENCH_UPD_TAIL_MS || 1000);
const BPORT = Number(process.env.BENCH_UPD_BATON_PORT || 18600);
const PPORT = Number(process.env.BENCH_UPD_PM2_PORT || 18700);
const CLI_TIMEOUT_MS = 120000;
const LOAD_HARD_MS = 150000; // no load loop outlives this, whatever happens in the driver
const STARTUP_ENV = ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS', 'NODE_V8_COVERAGE', 'NODE_DEBUG'];

// ---------------------------------------------------------------- load worker (thread)

/**
 * CONC loops, each: GET / on one keep-alive connection (a shared Agent with CONC sockets), read
 * the body, next. A failure is a request that errored (reset, refused, hang up, 2 s timeout) or
 * answered anything but 2xx. Runs until told to stop or LOAD_HARD_MS.
 */
async function loadWorker({ port, conc, hardMs }) {
  const wall = () => performance.timeOrigin + performance.now();
  const agent = new http.Agent({ keepAlive: true, maxSockets: conc });
  let stop = false;
  parentPort.on('message', (m) => { if (m === 'stop') stop = true; });
  const start = wall();
  const deadline = start + hardMs;
  const res = { total: 0, ok: 0, non2xx: 0, errors: 0, kinds: {}, fail_at: [], lat: [] };
  const fail = (kind) => {
    res.kinds[kind] = (res.kinds[kind] ?? 0) + 1;
    if (res.fail_at.length < 1000) res.fail_at.push(wall());
  };
  const one = () => new Promise((resolve) => {
    const t = wall();
    let done = false;
    const end = (kind) => {
      if (done) return;
      done = true;
      res.total++;
      if (kind === null) { res.ok++; res.lat.push(wall() - t); } else fail(kind);
      resolve();
    };
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent, timeout: 2000 }, (r) => {
      r.resume();
      r.on('end', () => {
        if (r.statusCode >= 200 && r.statusCode < 300) end(null);
        else { res.non2xx++; end(`http_${r.statusCode}`); }
      });
      r.on('error', (e) => { res.errors++; end(e.code || e.message); });
      r.on('aborted', () => { res.errors++; end('aborted'); });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e) => { res.errors++; end(e.code || e.message); });
  });
  await Promise.all(Array.from({ length: conc }, async () => { while (!stop && wall() < deadline) await one(); }));
  agent.destroy();
  const lat = res.lat.sort((a, b) => a - b);
  const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null);
  const dur = wall() - start;
  parentPort.postMessage({
    start, end: wall(), total: res.total, ok: res.ok, failed: res.total - res.ok, non2xx: res.non2xx, errors: res.errors, kinds: res.kinds,
    fail_at: res.fail_at, rps: Math.round(res.total / (dur / 1000)), p50_ms: q(0.5), p99_ms: q(0.99), max_ms: lat.at(-1) ?? null,
  });
}

if (!isMainThread && workerData?.updatesLoad) {
  await loadWorker(workerData.updatesLoad);
}

function startLoad(port) {
  const w = new Worker(new URL(import.meta.url), { workerData: { updatesLoad: { port, conc: CONC, hardMs: LOAD_HARD_MS } } });
  const result = new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`load worker exited ${code} without a result`)));
  });
  result.catch(() => {});
  return {
    async stop() {
      w.postMessage('stop');
      const r = await Promise.race([result, sleep(10000).then(() => null)]);
      await w.terminate();
      if (!r) throw new Error('load worker did not report within 10 s of stop');
      return r;
    },
    kill: () => w.terminate(),
  };
}

// ---------------------------------------------------------------- CLI runner

/** Spawns `node <args>` with env; resolves {ms, code, out, err}; killed after CLI_TIMEOUT_MS. */
function runCli(args, env, t0Ref) {
  return new Promise((resolve) => {
    const t0 = now();
    if (t0Ref) t0Ref.t0 = t0;
    const c = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => { try { c.kill('SIGKILL'); } catch { /* gone */ } }, CLI_TIMEOUT_MS);
    c.on('exit', (code, sig) => {
      const ms = now() - t0;
      clearTimeout(timer);
      c.on('close', () => resolve({ ms, code: code ?? sig, out, err }));
    });
  });
}
const tail = (s, n = 600) => s.slice(-n).replace(/\x1b\[[0-9;]*m/g, '');

// ---------------------------------------------------------------- Baton

class BatonUp {
  async start() {
    // BATON_HOST in its env (kept as this.env): the CLI (`cli`, `baton down`) talks to this Baton.
    Object.assign(this, await spawnBatonUp({ prefix: 'baton-bench-upd-', args: ['--dns-addr', '127.77.0.1:0'], env: (socket) => ({ ...process.env, BATON_HOST: `unix://${socket}` }) }));
    this.pid = this.proc.pid;
    return this.info;
  }

  cli(args) { return runCli([BIN, ...args], this.env); }

  /** Tasks of the service's current spec version that run (wanted running). */
  async current(name) {
    const svc = await this.api.call('GET', `/v1/services/${name}`);
    const ts = await this.api.call('GET', `/v1/tasks?service=${name}`);
    return { svc, ts, cur: ts.filter((t) => t.specVersion === svc.specVersion && t.desiredState === 'running' && t.status.state === 'running') };
  }

  async stop() {
    if (!this.proc) return;
    await stopBatonUp(this, async () => {
      const r = await runCli([BIN, 'down'], this.env).catch(() => null);
      if (r?.code !== 0) log(`baton down: ${r?.code} ${tail(r?.err ?? '')}`);
    });
    killRecordedTasks(this.dir);
    if (process.env.BENCH_KEEP_DATA !== '1') rmSync(this.dir, { recursive: true, force: true });
    this.proc = undefined;
  }
}

// ---------------------------------------------------------------- PM2 (CLI, private PM2_HOME)

class Pm2Cli {
  async start() {
    this.home = mkdtempSync(path.join(os.tmpdir(), 'bench-upd-pm2home-'));
    this.env = { ...process.env, PM2_HOME: this.home };
    this.pids = new Set();
    this.version = JSON.parse(readFileSync(path.join(ROOT, 'node_modules', 'pm2', 'package.json'), 'utf8')).version;
  }

  cli(args, extraEnv = {}) { return runCli([PM2_BIN, ...args], { ...this.env, ...extraEnv }); }

  async jlist() {
    const r = await this.cli(['jlist']);
    if (r.code !== 0) throw new Error(`pm2 jlist: ${r.code} ${tail(r.err)}`);
    const list = JSON.parse(r.out.slice(r.out.indexOf('[')));
    for (const p of list) if (p.pid) this.pids.add(p.pid);
    return list;
  }

  async startApp(name, n, port, env = {}) {
    const r = await this.cli(['start', APP, '-i', String(n), '--name', name], { PORT: String(port), VERSION: '1', ...env });
    if (r.code !== 0) throw new Error(`pm2 start ${name}: ${r.code} ${tail(r.err || r.out)}`);
    try { this.daemonPid = Number(readFileSync(path.join(this.home, 'pm2.pid'), 'utf8')); } catch { /* read later */ }
  }

  /** The app's processes; all online with VERSION === v? */
  async onVersion(name, n, v) {
    const ps = (await this.jlist()).filter((p) => p.name === name);
    return ps.length === n && ps.every((p) => p.pm2_env.status === 'online' && String(p.pm2_env.VERSION) === String(v)) && ps;
  }

  async stop() {
    if (!this.home) return;
    const r = await this.cli(['kill']).catch(() => null);
    if (r?.code !== 0) log(`pm2 kill: ${r?.code} ${tail(r?.err ?? '')}`);
    try { this.daemonPid ??= Number(readFileSync(path.join(this.home, 'pm2.pid'), 'utf8')); } catch { /* never started */ }
    const all = [...this.pids, ...(this.daemonPid ? [this.daemonPid] : [])];
    await pollUntil(() => all.every((p) => !isAlive(p)), 10000, 50, 'pm2 processes to exit').catch(() => {
      for (const p of all) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
    });
    rmSync(this.home, { recursive: true, force: true });
    this.home = undefined;
  }
}

// ---------------------------------------------------------------- helpers

/** ≥ n distinct pids answer on port (the app replies with its pid): all replicas take traffic. */
async function distinctPids(port, n, tries = 4 * n) {
  const pids = new Set();
  for (let i = 0; i < tries && pids.size < n; i++) { const b = await probe(port); if (b) pids.add(b); }
  return pids.size >= n;
}

const ratio = (a, b) => {
  if (!a?.n || !b?.n) return null;
  if (b.median === 0) return a.median === 0 ? 1 : null;
  const x = a.median / b.median;
  return x < 0.1 ? Math.round(x * 1000) / 1000 : Math.round(x * 100) / 100;
};
const fmt = (s) => (s && s.n ? `${s.median} [${s.min}–${s.max}]` : '—');

let cur; // { baton, pm2, loads } of the running bench, for cleanupUpdates()

/** Stops whatever runUpdatesBench started (safe to call twice, and from signal handlers). */
export async function cleanupUpdates() {
  if (!cur) return;
  const c = cur;
  cur = undefined;
  for (const l of c.loads) { try { await l.kill(); } catch { /* gone */ } }
  await Promise.allSettled([c.baton?.stop(), c.pm2?.stop()]);
}

// ---------------------------------------------------------------- the bench

export async function runUpdatesBench() {
  const removed = process.env.BENCH_KEEP_ENV === '1' ? [] : STARTUP_ENV.filter((k) => process.env[k] !== undefined);
  for (const k of removed) delete process.env[k];
  const out = {
    bench: 'updates', complete: false,
    conditions: { date: new Date().toISOString(), node: process.version, platform: `${os.platform()} ${os.release()} ${os.arch()}`, cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? null, loadavg_start: loadavg(), env_removed_for_all_subjects: removed },
    config: { reps: REPS, load: `${CONC} keep-alive loops of GET / (node:http, one Agent, 2 s timeout), unpaced, in a worker thread`, lead_ms: LEAD_MS, tail_ms: TAIL_MS, app: 'bench/app-http.cjs', baton_ports: [BPORT, BPORT + 1], pm2_ports: [PPORT, PPORT + 1, PPORT + 2] },
  };
  const save = (final = false) => saveResults(RESULTS, 'updates-latest.json', out, final);

  const baton = new BatonUp();
  const pm2 = new Pm2Cli();
  cur = { baton, pm2, loads: [] };
  try {
    const info = await baton.start();
    out.conditions.baton_version = info.version;
    await pm2.start();
    out.conditions.pm2 = pm2.version;
    log(`updates: reps ${REPS}, load ${CONC} loops, baton ${info.version} (data ${baton.dir}), pm2 ${pm2.version}, node ${process.version}, load ${loadavg().join(' ')}`);

    // --- set up every app once: Baton u4 (18600) and u10 (18601) behind the mesh; PM2 cluster
    // u4 naive (18700), u10 (18701), u4 graceful (18702).
    for (const [name, n, port] of [['bench_u4', 4, BPORT], ['bench_u10', 10, BPORT + 1]]) {
      const r = await baton.cli(['service', 'create', '--name', name, '--replicas', String(n), '-p', `${port}:80/http`, '-e', 'VERSION=1', '-w', HERE, process.execPath, APP]);
      if (r.code !== 0) throw new Error(`baton service create ${name}: ${r.code} ${tail(r.err || r.out)}`);
      await pollUntil(() => distinctPids(port, n), 30000, 100, `baton ${name} serving ${n} pids on ${port}`);
    }
    const pm2Apps = { u4: ['bench_u4', 4, PPORT, {}], u10: ['bench_u10', 10, PPORT + 1, {}], u4g: ['bench_u4g', 4, PPORT + 2, { BENCH_GRACEFUL: '1' }] };
    for (const [name, n, port, env] of Object.values(pm2Apps)) {
      await pm2.startApp(name, n, port, env);
      await pollUntil(() => pm2.onVersion(name, n, 1), 30000, 200, `pm2 ${name} online`);
      await pollUntil(() => distinctPids(port, n), 30000, 100, `pm2 ${name} serving ${n} pids on ${port}`);
    }
    const ver = { bench_u4: 1, bench_u10: 1, pm2_bench_u4: 1, pm2_bench_u10: 1, pm2_bench_u4g: 1 };
    const next = (k) => ++ver[k]; // every update moves its app to the next VERSION
    await sleep(1000);

    // --- one update of each kind, as warm-up (not recorded)
    await (await batonUpdate(baton, 'bench_u4', 4, next('bench_u4'), ['--update-parallelism', '2', '--update-monitor', '0s'])).verify();
    await (await pm2Reload(pm2, 'bench_u4', 4, next('pm2_bench_u4'), pm2Apps.u4[3])).verify();
    await sleep(1000);

    // --- 1. failed requests during a rolling update of 4 replicas under load
    const rows1 = { baton: [], pm2: [], pm2_graceful: [] };
    for (let i = 0; i < REPS; i++) {
      for (const who of rotate(['baton', 'pm2', 'pm2_graceful'], i)) {
        const port = who === 'baton' ? BPORT : who === 'pm2' ? PPORT : PPORT + 2;
        const load = startLoad(port);
        cur.loads.push(load);
        await sleep(LEAD_MS);
        let u;
        try {
          u = who === 'baton'
            ? await batonUpdate(baton, 'bench_u4', 4, next('bench_u4'), ['--update-parallelism', '2', '--update-monitor', '0s'])
            : await pm2Reload(pm2, who === 'pm2' ? 'bench_u4' : 'bench_u4g', 4, next(who === 'pm2' ? 'pm2_bench_u4' : 'pm2_bench_u4g'), who === 'pm2' ? {} : pm2Apps.u4g[3]);
        } finally {
          await sleep(TAIL_MS);
        }
        const l = await load.stop();
        cur.loads = cur.loads.filter((x) => x !== load);
        await u.verify(); // after the load window: checks the new version runs everywhere
        const r = {
          update_ms: r1(u.ms), requests: l.total, failed: l.failed, non2xx: l.non2xx, errors: l.errors, kinds: l.kinds, rps: l.rps, p50_ms: r1(l.p50_ms), p99_ms: r1(l.p99_ms), max_ms: r1(l.max_ms),
          // when each failure happened, ms after the update command was spawned
          fail_at_ms: l.fail_at.map((t) => r1(t - u.wall0)),
          load_window_ms: r1(l.end - l.start),
          ...(u.server ? { server: u.server } : {}),
        };
        rows1[who].push(r);
        log(`update x4 under load rep ${i} ${who}: ${r.failed} failed / ${r.requests} (${JSON.stringify(r.kinds)}), update ${r.update_ms} ms, ${r.rps} req/s, p99 ${r.p99_ms} max ${r.max_ms} ms`);
        await sleep(1000);
      }
    }
    const col = (rs, k) => stats(rs.map((r) => r[k]));
    const sum1 = (rs) => ({ failed: col(rs, 'failed'), requests: col(rs, 'requests'), update_ms: col(rs, 'update_ms'), rps: col(rs, 'rps'), p99_ms: col(rs, 'p99_ms'), max_ms: col(rs, 'max_ms'), runs: rs });
    out.under_load_x4 = { baton: sum1(rows1.baton), pm2_cluster: sum1(rows1.pm2), pm2_cluster_graceful_app: sum1(rows1.pm2_graceful) };
    out.under_load_x4.ratio_failed_baton_pm2 = ratio(out.under_load_x4.baton.failed, out.under_load_x4.pm2_cluster.failed);
    out.under_load_x4.ratio_update_ms_baton_pm2 = ratio(out.under_load_x4.baton.update_ms, out.under_load_x4.pm2_cluster.update_ms);
    save();

    // --- 2. time of a 10-replica rolling update (no load)
    const rows2 = { baton: [], pm2: [] };
    for (let i = 0; i < REPS; i++) {
      for (const who of rotate(['baton', 'pm2'], i)) {
        const u = who === 'baton'
          ? await batonUpdate(baton, 'bench_u10', 10, next('bench_u10'), ['--update-parallelism', '2', '--update-delay', '0s', '--update-monitor', '0s'])
          : await pm2Reload(pm2, 'bench_u10', 10, next('pm2_bench_u10'), {});
        await u.verify();
        rows2[who].push(u);
        log(`update x10 rep ${i} ${who}: ${r1(u.ms)} ms${u.server ? ` (server ${u.server.update_ms} ms, batches created at ${u.server.batches_created_ms.join('/')} ms)` : ''}`);
        await sleep(1000);
      }
    }
    out.update_x10 = {
      baton: { cli_exit_ms: stats(rows2.baton.map((u) => u.ms)), server_update_ms: stats(rows2.baton.map((u) => u.server.update_ms)), runs: rows2.baton.map((u) => u.server) },
      pm2_cluster: { cli_exit_ms: stats(rows2.pm2.map((u) => u.ms)) },
    };
    out.update_x10.ratio_baton_pm2 = ratio(out.update_x10.baton.cli_exit_ms, out.update_x10.pm2_cluster.cli_exit_ms);

    // --- CLI floor: what a no-op command costs each CLI (node start + module loading + one call)
    const floor = { baton: [], pm2: [] };
    for (let i = 0; i < REPS; i++) {
      floor.baton.push((await baton.cli(['service', 'ls'])).ms);
      floor.pm2.push((await pm2.cli(['ls'])).ms);
    }
    out.cli_floor = { baton_service_ls_ms: stats(floor.baton), pm2_ls_ms: stats(floor.pm2) };
    save();
    out.baton_log_warnings = (baton.logTail(Infinity).match(/"level":(40|50|60)/g) ?? []).length;
  } catch (err) {
    out.error = String(err?.message ?? err);
    try { save(); } catch { /* keep the original error */ }
    throw err;
  } finally {
    await cleanupUpdates();
  }
  save(true);
  return out;
}

/** `baton service update --env-add VERSION=v …` → exit 0; verifies n running tasks of the new spec with VERSION=v. */
async function batonUpdate(baton, name, n, v, flags) {
  const wall0 = performance.timeOrigin + performance.now();
  const r = await baton.cli(['service', 'update', '--env-add', `VERSION=${v}`, ...flags, name]);
  if (r.code !== 0) throw new Error(`baton service update ${name} VERSION=${v}: exit ${r.code} ${tail(r.err || r.out)}`);
  const u = { ms: r.ms, wall0 };
  u.verify = async () => { u.server = await batonVerify(baton, name, n, v); };
  return u;
}

async function batonVerify(baton, name, n, v) {
  const { svc, cur: ts } = await baton.current(name);
  if (ts.length !== n || !ts.every((t) => t.spec.env?.VERSION === String(v))) throw new Error(`baton ${name}: after update ${ts.length}/${n} current tasks, versions ${ts.map((t) => t.spec.env?.VERSION).join(',')}`);
  if (svc.updateStatus?.state !== 'completed') throw new Error(`baton ${name}: updateStatus ${JSON.stringify(svc.updateStatus)}`);
  // Where the time goes, from the store's own timestamps (ms after updateStatus.startedAt).
  const s0 = svc.updateStatus.startedAt;
  const created = [...new Set(ts.map((t) => t.createdAt - s0))].sort((a, b) => a - b);
  const server = {
    update_ms: svc.updateStatus.completedAt - s0,
    batches_created_ms: created,
    tasks_running_ms: ts.map((t) => (t.status.startedAt ?? t.status.timestamp) - s0).sort((a, b) => a - b),
  };
  // The old tasks are drained and stopped after the CLI returns; wait until their processes are gone.
  await pollUntil(async () => {
    const all = await baton.api.call('GET', '/v1/tasks');
    const live = all.filter((t) => t.desiredState === 'running').length;
    return childrenOf(baton.pid).length === live;
  }, 30000, 50, `baton ${name}'s old tasks to exit`);
  return server;
}

/** `pm2 reload <name> --update-env` with VERSION=v → exit; verifies n online with VERSION=v. */
async function pm2Reload(pm2, name, n, v, env) {
  const wall0 = performance.timeOrigin + performance.now();
  const r = await pm2.cli(['reload', name, '--update-env'], { VERSION: String(v), ...env });
  if (r.code !== 0) throw new Error(`pm2 reload ${name}: exit ${r.code} ${tail(r.err || r.out)}`);
  const u = { ms: r.ms, wall0 };
  u.verify = () => pollUntil(() => pm2.onVersion(name, n, v), 10000, 100, `pm2 ${name} on VERSION=${v}`);
  return u;
}

export function updatesTable(o) {
  const L = [];
  const c = o.conditions;
  L.push(`Rolling updates: Baton ${c.baton_version ?? ''} (mesh, L7) vs PM2 ${c.pm2 ?? ''} cluster mode — ${c.date}, node ${c.node}, ${c.cpus} CPUs, load ${c.loadavg_start.join('/')} → ${c.loadavg_end?.join('/')}, ${o.config.reps} reps. median [min–max]; ratio = Baton median / PM2 median.`);
  L.push('');
  L.push('| measurement | Baton | PM2 cluster | PM2 cluster, graceful app | Baton/PM2 |');
  L.push('|---|---|---|---|---|');
  const u = o.under_load_x4;
  if (u) {
    L.push(`| update of 4 replicas under load: failed requests | ${fmt(u.baton.failed)} | ${fmt(u.pm2_cluster.failed)} | ${fmt(u.pm2_cluster_graceful_app.failed)} | **${u.ratio_failed_baton_pm2 ?? '—'}** |`);
    L.push(`| … requests in the window (${o.config.lead_ms / 1000} s before → ${o.config.tail_ms / 1000} s after) | ${fmt(u.baton.requests)} | ${fmt(u.pm2_cluster.requests)} | ${fmt(u.pm2_cluster_graceful_app.requests)} | ${ratio(u.baton.requests, u.pm2_cluster.requests) ?? '—'} |`);
    L.push(`| … throughput in the window (req/s) | ${fmt(u.baton.rps)} | ${fmt(u.pm2_cluster.rps)} | ${fmt(u.pm2_cluster_graceful_app.rps)} | ${ratio(u.baton.rps, u.pm2_cluster.rps) ?? '—'} |`);
    L.push(`| … p99 / max latency in the window (ms) | ${fmt(u.baton.p99_ms)} / ${fmt(u.baton.max_ms)} | ${fmt(u.pm2_cluster.p99_ms)} / ${fmt(u.pm2_cluster.max_ms)} | ${fmt(u.pm2_cluster_graceful_app.p99_ms)} / ${fmt(u.pm2_cluster_graceful_app.max_ms)} | — |`);
    L.push(`| … update command → exit, under load (ms) | ${fmt(u.baton.update_ms)} | ${fmt(u.pm2_cluster.update_ms)} | ${fmt(u.pm2_cluster_graceful_app.update_ms)} | ${u.ratio_update_ms_baton_pm2 ?? '—'} |`);
  }
  const x = o.update_x10;
  if (x) {
    L.push(`| update of 10 replicas, parallelism 2, no delay: command → exit (ms) | ${fmt(x.baton.cli_exit_ms)} | ${fmt(x.pm2_cluster.cli_exit_ms)} | — | **${x.ratio_baton_pm2 ?? '—'}** |`);
    L.push(`| … Baton server side: updateStatus.startedAt → completedAt (ms) | ${fmt(x.baton.server_update_ms)} | — | — | — |`);
  }
  if (o.cli_floor) L.push(`| CLI floor: \`baton service ls\` / \`pm2 ls\` (ms) | ${fmt(o.cli_floor.baton_service_ls_ms)} | ${fmt(o.cli_floor.pm2_ls_ms)} | — | ${ratio(o.cli_floor.baton_service_ls_ms, o.cli_floor.pm2_ls_ms) ?? '—'} |`);
  return L.join('\n') + '\n';
}

// ---------------------------------------------------------------- alone

const alone = isMainThread && process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (alone) {
  const abort = (why, code) => { log(`aborting: ${why}`); void cleanupUpdates().finally(() => process.exit(code)); };
  process.once('SIGINT', () => abort('SIGINT', 130));
  process.once('SIGTERM', () => abort('SIGTERM', 143));
  const watchdog = setTimeout(() => abort('global timeout', 3), Number(process.env.BENCH_UPD_TIMEOUT_S || 600) * 1000);
  try {
    const o = await runUpdatesBench();
    clearTimeout(watchdog);
    process.stdout.write(updatesTable(o));
    process.exit(0);
  } catch (err) {
    log(`updates bench failed: ${err?.stack ?? err}`);
    clearTimeout(watchdog);
    await cleanupUpdates();
    process.exit(1);
  }
}
