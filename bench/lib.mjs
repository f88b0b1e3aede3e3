// Helpers for bench/run.mjs: timing, stats (same {n,min,median,max,samples} shape as
// shared/bench/peers/_lib.mjs), bounded polling, HTTP probes on 127.0.0.1, the Baton API on
// its unix socket, and /proc readings. No dependencies beyond Node.
import { spawn } from 'node:child_process';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Monotonic milliseconds (process.hrtime). */
export const now = () => Number(process.hrtime.bigint()) / 1e6;
export const log = (...a) => process.stderr.write(a.join(' ') + '\n');
const round = (x) => (Math.abs(x) < 10 ? Math.round(x * 1000) / 1000 : Math.round(x * 10) / 10);
export const r1 = round;

export function stats(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return { n: 0 };
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  // p90: nearest rank (with 5 samples that is the 5th, the max; with 10 the 9th).
  const p90 = v[Math.min(v.length, Math.ceil(0.9 * v.length)) - 1];
  return { n: v.length, min: round(v[0]), median: round(median), p90: round(p90), max: round(v[v.length - 1]), samples: xs.filter((x) => typeof x === 'number').map(round) };
}

export const loadavg = () => os.loadavg().map((x) => Math.round(x * 100) / 100);

/**
 * Calls fn every intervalMs (measured from the start of each call, so a slow call is followed
 * at once by the next) until it returns a truthy value; throws after timeoutMs.
 */
export async function pollUntil(fn, timeoutMs, intervalMs, what = 'condition') {
  const deadline = now() + timeoutMs;
  for (;;) {
    const t = now();
    const v = await fn();
    if (v) return v;
    if (t > deadline) throw new Error(`timeout after ${timeoutMs} ms waiting for ${what}`);
    const rest = intervalMs - (now() - t);
    if (rest > 0) await sleep(rest);
  }
}

/**
 * GET http://127.0.0.1:port/ with a fresh connection; resolves the body (app-http.cjs answers
 * its pid) on 200, null otherwise. Never rejects.
 */
export function probe(port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: timeoutMs }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve(res.statusCode === 200 ? b.trim() : null));
      res.on('error', () => resolve(null));
    });
    req.on('error', () => resolve(null));
    req.on('timeout', () => req.destroy());
  });
}

/** A JSON client for Baton's REST API on its unix socket (one keep-alive connection). */
export function batonApi(socketPath) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const call = (method, path, body) =>
    new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request({ socketPath, agent, method, path, headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {} }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const txt = Buffer.concat(chunks).toString();
          let json;
          try { json = txt ? JSON.parse(txt) : undefined; } catch { json = txt; }
          if (res.statusCode >= 400) {
            const e = new Error(`${method} ${path} -> ${res.statusCode} ${txt.slice(0, 300)}`);
            e.status = res.statusCode;
            reject(e);
          } else resolve(json);
        });
      });
      req.setTimeout(30000, () => req.destroy(new Error(`baton api timeout: ${method} ${path}`)));
      req.on('error', reject);
      if (data) req.write(data);
      req.end();
    });
  return { call, close: () => agent.destroy() };
}

/** True while pid exists and is not a zombie. */
export function isAlive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** VmRSS / VmHWM of pid in MiB (from /proc/<pid>/status). */
export function memOf(pid) {
  const txt = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number((new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(txt) || [])[1]);
  return { rss_mib: round(kb('VmRSS') / 1024), hwm_mib: round(kb('VmHWM') / 1024) };
}

const TICK_MS = 1000 / 100; // CLK_TCK is 100 on Linux
/** utime+stime of pid in ms (10 ms resolution); NaN when unreadable. */
export function cpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS; // fields 14, 15 of stat(5)
  } catch {
    return NaN;
  }
}

/** Waits until none of pids is alive. */
export async function waitGone(pids, timeoutMs, what = 'processes to exit') {
  await pollUntil(() => pids.every((p) => !isAlive(p)), timeoutMs, 20, what);
}

/** Rotates an array by i (interleaves the subjects' order across repetitions). */
export const rotate = (xs, i) => xs.map((_, k) => xs[(k + i) % xs.length]);

/** Live (non-zombie) child pids of pid, from /proc/<n>/stat's ppid field. */
export function childrenOf(pid) {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === pid && f[0] !== 'Z' && f[0] !== 'X') out.push(Number(d));
    } catch { /* gone meanwhile */ }
  }
  return out;
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'baton.js');

/**
 * `baton up` on a new data dir under the temp dir (`prefix`), in its own process group, its
 * output in DIR/baton-up.log; resolves once its API answers, with its /v1/info. `env` may be a
 * function of the API socket's path.
 */
export async function spawnBatonUp({ prefix, args = [], env = process.env }) {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const socket = path.join(dir, 'baton.sock');
  if (typeof env === 'function') env = env(socket);
  const logTail = (chars = 2000) => {
    try { return readFileSync(path.join(dir, 'baton-up.log'), 'utf8').slice(-chars); } catch { return '(no log)'; }
  };
  const fd = openSync(path.join(dir, 'baton-up.log'), 'a');
  const proc = spawn(process.execPath, [BIN, 'up', '--data-dir', dir, ...args], { detached: true, stdio: ['ignore', fd, fd], cwd: ROOT, env });
  closeSync(fd);
  const exited = new Promise((r) => proc.once('exit', r));
  const api = batonApi(socket);
  const info = await pollUntil(async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`baton up exited (${proc.exitCode ?? proc.signalCode}): ${logTail()}`);
    return existsSync(socket) && (await api.call('GET', '/v1/info').catch(() => null));
  }, 30000, 50, 'baton up to answer').catch((e) => { throw new Error(`${e.message}; baton-up.log: ${logTail()}`); });
  return { dir, socket, env, proc, exited, api, info, logTail };
}

/** Stops a `spawnBatonUp` process: `ask` asks it to stop; after 20 s its process group is killed. */
export async function stopBatonUp({ proc, exited, api }, ask) {
  if (proc.exitCode === null && proc.signalCode === null) {
    await ask();
    await Promise.race([exited, sleep(20000)]);
    if (proc.exitCode === null && proc.signalCode === null) {
      try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ }
      await Promise.race([exited, sleep(5000)]);
    }
  }
  api.close();
}

/** Writes a bench's results whole (temp file, rename) as DIR/NAME, with the run's end conditions. */
export function saveResults(dir, name, out, final) {
  mkdirSync(dir, { recursive: true });
  out.conditions.loadavg_end = loadavg();
  out.conditions.date_end = new Date().toISOString();
  out.complete = final;
  const file = path.join(dir, name);
  writeFileSync(file + '.tmp', JSON.stringify(out, null, 2) + '\n');
  renameSync(file + '.tmp', file);
}

/** Kills the process group of every task still recorded under a Baton data dir (a run cut short leaves none behind). */
export function killRecordedTasks(dir) {
  const records = path.join(dir, 'agent', 'tasks');
  if (!existsSync(records)) return;
  for (const f of readdirSync(records)) {
    // The task's process group is its shim's (handle.groupId); records without one name a group leader.
    try {
      const { handle } = JSON.parse(readFileSync(path.join(records, f), 'utf8'));
      process.kill(-(handle.groupId ?? handle.pid), 'SIGKILL');
    } catch { /* gone, or no handle */ }
  }
}
