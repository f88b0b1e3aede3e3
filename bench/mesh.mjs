#!/usr/bin/env node
// Mesh data plane vs nginx, one run, targets interleaved per repetition (see bench/README or
// docs/mesh.md for the definitions). The same tiny HTTP server (bench/app-http.cjs) is hit
//   direct      : the app itself
//   mesh_l4     : Baton's mesh, tcp listener (src/mesh via tsx, bench/mesh-proxy.mjs)
//   nginx_l4    : nginx `stream` proxy_pass, 1 worker
//   mesh_l7     : Baton's mesh, http listener (undici keep-alive pool upstream)
//   nginx_l7    : nginx proxy_pass, upstream keepalive 32, HTTP/1.1, Connection ""
// Throughput: wrk -t1 -c10 -dBENCH_MESH_SECONDS (5) keep-alive. Latency at a fixed rate:
// a paced Node client (BENCH_MESH_RATE req/s, 10 keep-alive connections). Everything on 127.0.0.1.
// Env: BENCH_REPS (3), BENCH_MESH_SECONDS (5), BENCH_MESH_RATE (2000), BENCH_MESH_PORT (39400..39404).
// Writes bench/results/mesh-latest.json; prints a markdown table on stdout, progress on stderr.
import { spawn, execFileSync } from 'node:child_process';
import http from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg, log, now, pollUntil, probe, r1, sleep, stats } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const REPS = Number(process.env.BENCH_REPS || 3);
const SECONDS = Number(process.env.BENCH_MESH_SECONDS || 5);
const RATE = Number(process.env.BENCH_MESH_RATE || 2000);
const PACED_S = 3;
const BASE = Number(process.env.BENCH_MESH_PORT || 39400);
const P = { direct: BASE, mesh_l4: BASE + 1, mesh_l7: BASE + 2, nginx_l4: BASE + 3, nginx_l7: BASE + 4 };
const NGINX_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

const children = [];
const startChild = (cmd, args, opts = {}) => {
  const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], ...opts });
  children.push(c);
  return c;
};
const cleanup = () => { for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM'); };
process.on('exit', cleanup);

function nginxConf(dir) {
  return `
${existsSync(NGINX_MODULE) ? `load_module ${NGINX_MODULE};` : ''}
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
stream {
  server { listen 127.0.0.1:${P.nginx_l4}; proxy_pass 127.0.0.1:${P.direct}; }
}
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream app { server 127.0.0.1:${P.direct}; keepalive 32; }
  server {
    listen 127.0.0.1:${P.nginx_l7};
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`;
}

/** wrk with --latency; parses req/s, p50/p99 (ms), socket errors and non-2xx/3xx. */
function wrk(port) {
  const txt = execFileSync('wrk', ['-t1', '-c10', `-d${SECONDS}s`, '--timeout', '2s', '--latency', `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
  const ms = (label) => {
    const m = new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(txt);
    if (!m) return null;
    return r1(Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2]]);
  };
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(txt);
  return {
    rps: Math.round(Number(/Requests\/sec:\s+([\d.]+)/.exec(txt)?.[1] ?? NaN)),
    p50_ms: ms('50'),
    p99_ms: ms('99'),
    socket_errors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    non2xx3xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(txt)?.[1] ?? 0),
  };
}

/**
 * Open-loop load at `rate` req/s over 10 keep-alive connections for PACED_S seconds (requests
 * due in the same timer tick leave together). Latency runs from the actual send: the timer's
 * ~1 ms granularity would otherwise dominate sub-millisecond figures.
 */
async function paced(port, rate = RATE) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
  const lat = [];
  let errors = 0;
  const total = rate * PACED_S;
  const t0 = now();
  const inflight = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - now();
    if (wait > 0) await sleep(wait);
    const sent = now();
    inflight.push(new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        res.resume();
        res.on('end', () => { if (res.statusCode === 200) lat.push(now() - sent); else errors++; resolve(); });
      });
      req.on('error', () => { errors++; resolve(); });
    }));
  }
  await Promise.all(inflight);
  agent.destroy();
  lat.sort((a, b) => a - b);
  const q = (p) => r1(lat[Math.min(lat.length - 1, Math.ceil(p * lat.length) - 1)]);
  return { rate, requests: total, errors, p50_ms: q(0.5), p99_ms: q(0.99), achieved_rps: Math.round(total / ((now() - t0) / 1000)) };
}

function conditions() {
  let commit = null;
  try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim(); } catch { /* not a checkout */ }
  let nginx = null;
  try { nginx = execFileSync('nginx', ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }); } catch (e) { nginx = String(e.stderr ?? e.message).trim(); }
  return { date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? null, loadavg_start: loadavg(), baton_commit: commit, nginx: nginx?.trim() };
}

const out = { bench: 'mesh', complete: false, conditions: conditions(), config: { reps: REPS, wrk: `wrk -t1 -c10 -d${SECONDS}s --timeout 2s --latency, keep-alive, GET / -> 200 (bench/app-http.cjs)`, paced: `${RATE} req/s for ${PACED_S} s over 10 keep-alive connections, latency from the send`, mesh: 'src/mesh via tsx (bench/mesh-proxy.mjs), one process', nginx: '1 worker; stream proxy_pass (L4); proxy_pass + upstream keepalive 32 + HTTP/1.1 + Connection "" (L7)' }, targets: {} };

function save(final = false) {
  const dir = path.join(HERE, 'results');
  mkdirSync(dir, { recursive: true });
  out.conditions.loadavg_end = loadavg();
  out.complete = final;
  const file = path.join(dir, process.env.BENCH_MESH_OUT || 'mesh-latest.json');
  writeFileSync(file + '.tmp', JSON.stringify(out, null, 2) + '\n');
  renameSync(file + '.tmp', file);
}

export async function runMeshBench() {
  const ngx = mkdtempSync(path.join(os.tmpdir(), 'bench-mesh-nginx-'));
  try {
    writeFileSync(path.join(ngx, 'nginx.conf'), nginxConf(ngx));
    startChild(process.execPath, [path.join(HERE, 'app-http.cjs')], { env: { ...process.env, PORT: String(P.direct) } });
    startChild(process.execPath, ['--import', 'tsx', path.join(HERE, 'mesh-proxy.mjs'), String(P.mesh_l4), String(P.mesh_l7), String(P.direct)], { cwd: ROOT });
    startChild('nginx', ['-p', ngx, '-c', path.join(ngx, 'nginx.conf'), '-g', 'daemon off;']);
    for (const [k, p] of Object.entries(P)) await pollUntil(() => probe(p), 20000, 50, `${k} on ${p} to answer`);
    const order = ['direct', 'mesh_l4', 'nginx_l4', 'mesh_l7', 'nginx_l7'];
    const rows = Object.fromEntries(order.map((k) => [k, { wrk: [], paced: [] }]));
    for (const k of order) wrk(P[k]); // warm-up (JIT, pools), not recorded
    for (let i = 0; i < REPS; i++) {
      const rot = order.map((_, j) => order[(j + i) % order.length]);
      for (const k of rot) {
        await sleep(300);
        const w = wrk(P[k]);
        rows[k].wrk.push(w);
        await sleep(300);
        const pc = await paced(P[k]);
        rows[k].paced.push(pc);
        log(`rep ${i} ${k}: ${w.rps} req/s p50 ${w.p50_ms} p99 ${w.p99_ms} ms errors ${w.socket_errors}/${w.non2xx3xx}; paced ${pc.rate}/s p50 ${pc.p50_ms} p99 ${pc.p99_ms} ms errors ${pc.errors}`);
      }
      for (const k of order) {
        const col = (xs, f) => stats(xs.map((x) => x[f]));
        out.targets[k] = {
          rps: col(rows[k].wrk, 'rps'), p50_ms: col(rows[k].wrk, 'p50_ms'), p99_ms: col(rows[k].wrk, 'p99_ms'),
          errors: col(rows[k].wrk.map((w) => ({ e: w.socket_errors + w.non2xx3xx })), 'e'),
          paced_p50_ms: col(rows[k].paced, 'p50_ms'), paced_p99_ms: col(rows[k].paced, 'p99_ms'), paced_errors: col(rows[k].paced, 'errors'),
        };
      }
      save();
    }
    const med = (k, f) => out.targets[k][f].median;
    const ratio = (a, b) => Math.round((a / b) * 100) / 100;
    out.ratios = {
      mesh_l4_vs_nginx_l4_rps: ratio(med('mesh_l4', 'rps'), med('nginx_l4', 'rps')),
      mesh_l7_vs_nginx_l7_rps: ratio(med('mesh_l7', 'rps'), med('nginx_l7', 'rps')),
      mesh_l4_vs_direct_rps: ratio(med('mesh_l4', 'rps'), med('direct', 'rps')),
      mesh_l7_vs_direct_rps: ratio(med('mesh_l7', 'rps'), med('direct', 'rps')),
    };
    out.p99_added_at_fixed_rate_ms = Object.fromEntries(['mesh_l4', 'nginx_l4', 'mesh_l7', 'nginx_l7'].map((k) => [k, r1(med(k, 'paced_p99_ms') - med('direct', 'paced_p99_ms'))]));
    save(true);
    return out;
  } finally {
    cleanup();
    await sleep(300);
    rmSync(ngx, { recursive: true, force: true });
  }
}

export function meshTable(o) {
  const f = (s) => (s?.n ? `${s.median} [${s.min}–${s.max}]` : '—');
  const L = [`Mesh vs nginx — ${o.conditions.date}, node ${o.conditions.node}, ${o.conditions.cpus} CPUs, ${o.config.reps} reps, median [min–max]. ${o.config.wrk}. Paced: ${o.config.paced}.`, '',
    '| target | req/s | p50 ms | p99 ms | errors | paced p50 ms | paced p99 ms |', '|---|---|---|---|---|---|---|'];
  for (const [k, t] of Object.entries(o.targets)) L.push(`| ${k} | ${f(t.rps)} | ${f(t.p50_ms)} | ${f(t.p99_ms)} | ${f(t.errors)} | ${f(t.paced_p50_ms)} | ${f(t.paced_p99_ms)} |`);
  L.push('', `Ratios (req/s medians): ${Object.entries(o.ratios ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  L.push(`p99 added over direct at ${RATE} req/s (ms): ${Object.entries(o.p99_added_at_fixed_rate_ms ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  return L.join('\n') + '\n';
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.once('SIGINT', () => process.exit(130));
  process.once('SIGTERM', () => process.exit(143));
  try {
    const o = await runMeshBench();
    process.stdout.write(meshTable(o));
    process.exit(0);
  } catch (err) {
    log(`mesh bench failed: ${err?.stack ?? err}`);
    out.error = String(err?.message ?? err);
    save();
    process.exit(1);
  }
}
