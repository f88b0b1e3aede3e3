#!/usr/bin/env node
// The docker driver vs Docker Swarm vs the engine's own floor: same dockerd, same image, one run.
// See docs/benchmarks.md ("Containers") for the exact definitions. Progress on stderr, a markdown
// table on stdout, bench/results/docker-latest.json (rewritten after every section).
//
//  1. create → all running, N = 1, 10, 30 (BENCH_DOCKER_SIZES): Baton, Swarm, and the floor
//     (N containers created and started in parallel straight through the Engine API)
//  2. scale 10 → 30: Baton, Swarm, floor (20 more containers in parallel)
//  3. rolling update of 10 replicas, parallelism 2, no delay: command → all 10 new tasks running
//  4. self-heal: `docker kill` of slot 1's container → a new task running in slot 1
//     (Swarm with its default 5 s restart delay and with 0 s; Baton with its defaults; floor:
//     the kill, then one container created and started)
//  5. failed requests under a bounded load during a rolling update, through each one's published
//     port (Swarm: mode=host, because its ingress needs IPVS, which this kernel lacks)
//
// Every subject is driven through its API (Baton's on its unix socket, the Engine's on
// /var/run/docker.sock) and polled every BENCH_POLL_MS (20) the same way. A single-node swarm is
// initialised if none is active, and left again at the end when this script created it. Only
// what this script creates (names bench_dk*, label bench.docker=1) is ever removed.
// Env: BENCH_DOCKER_REPS (3), BENCH_DOCKER_SIZES (1,10,30), BENCH_POLL_MS (20),
// BENCH_DOCKER_ONLY=create,scale,update,heal,load, BENCH_DOCKER_PORT (18950, 18951),
// BENCH_KEEP_DATA=1 (keep baton's data dir). Alone: `node bench/docker.mjs` (after `npm run build`).
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { loadavg, log, now, pollUntil, r1, rotate, saveResults, sleep, spawnBatonUp, stats, stopBatonUp } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const BIN = path.join(ROOT, 'bin', 'baton.js');
const RESULTS = path.join(HERE, 'results');

const REPS = Number(process.env.BENCH_DOCKER_REPS || 3);
const SIZES = (process.env.BENCH_DOCKER_SIZES || '1,10,30').split(',').map(Number).filter((n) => n > 0);
const POLL_MS = Number(process.env.BENCH_POLL_MS || 20);
const ONLY = (process.env.BENCH_DOCKER_ONLY || 'create,scale,update,heal,load').split(',');
const BPORT = Number(process.env.BENCH_DOCKER_PORT || 18950);
const SPORT = BPORT + 1;
const LOAD_CONC = 10;
const LOAD_PAUSE_MS = 20; // each loop waits this long between requests: ≤ 500 req/s, no port exhaustion
const LOAD_LEAD_MS = 1000;
const LOAD_TAIL_MS = 1000;
const HEAL_REPLICAS = 3;
const HEAL_PAUSE_MS = 1500;
const BENCH_LABEL = 'bench.docker';

// The same task everywhere: a shell loop that exits on SIGTERM (busybox sh as PID 1 would
// otherwise ignore TERM and wait out the grace period). Swarm's peer runs used the same command.
const SLEEP_CMD = ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'];
// httpd must not be PID 1 (it would ignore SIGTERM): the shell forwards TERM and exits.
const HTTPD_CMD = ['sh', '-c', 'trap "kill $p; exit 0" TERM; httpd -f -p 80 -h /www & p=$!; wait'];

const docker = new Docker({ socketPath: '/var/run/docker.sock' });

// ---------------------------------------------------------------- the image

/** baton-test/busybox:latest, built FROM scratch the way the tests build it (test/harness/images.ts). */
async function ensureImage() {
  const { tsImport } = await import('tsx/esm/api');
  const images = await tsImport(path.join(ROOT, 'test', 'harness', 'images.ts'), import.meta.url);
  return images.ensureBusyboxImage(docker);
}

// ---------------------------------------------------------------- Baton

class BatonUp {
  async start() {
    Object.assign(this, await spawnBatonUp({ prefix: 'baton-bench-docker-', args: ['--dns-addr', '127.77.0.1:0'], env: { ...process.env, BATON_LOG_LEVEL: process.env.BATON_LOG_LEVEL ?? 'info' } }));
    const [node] = await this.api.call('GET', '/v1/nodes');
    if (!node.description?.drivers?.includes('docker') && !node.drivers?.includes('docker')) throw new Error(`baton's node offers no docker driver: ${JSON.stringify(node).slice(0, 300)}`);
    this.nodeId = node.id;
    return this.info;
  }

  create(name, replicas, extra = {}) {
    return this.api.call('POST', '/v1/services', { name, replicas, image: BUSYBOX, command: SLEEP_CMD, stopGracePeriod: '2s', ...extra });
  }

  tasks(name) { return this.api.call('GET', `/v1/tasks?service=${encodeURIComponent(name)}`); }

  /** Wanted-running tasks that run; `all`: exactly n of them and nothing else wanted running. */
  async running(name, n, pred = () => true) {
    const ts = await this.tasks(name);
    const want = ts.filter((t) => t.desiredState === 'running');
    const run = want.filter((t) => t.status.state === 'running');
    return run.length === n && want.length === n && run.every(pred) ? run : false;
  }

  async remove(name) {
    await this.api.call('DELETE', `/v1/services/${encodeURIComponent(name)}`).catch((e) => { if (e.status !== 404) throw e; });
    await pollUntil(async () => (await containersOf({ 'baton.service.name': name })).length === 0, 60000, 100, `baton ${name}'s containers to go`);
  }

  async stop() {
    if (!this.proc) return;
    await stopBatonUp(this, () => this.api.call('POST', '/v1/shutdown', { stopTasks: true }).catch(() => {}));
    // Whatever this Baton's node still has (a run cut short) goes with it.
    if (this.nodeId) await removeContainers(await containersOf({ 'baton.node.id': this.nodeId }));
    // A failed run keeps the data dir: its baton-up.log says what Baton was doing.
    if (process.env.BENCH_KEEP_DATA !== '1' && !this.failed) rmSync(this.dir, { recursive: true, force: true });
    else log(`docker: baton's data dir kept: ${this.dir}`);
    this.proc = undefined;
  }
}

// ---------------------------------------------------------------- Engine API helpers

const BUSYBOX = 'baton-test/busybox:latest';

async function containersOf(labels) {
  return docker.listContainers({ all: true, filters: { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) } });
}

async function removeContainers(list) {
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
}

/** Swarm: a service through the Engine API (what `docker service create --detach` sends). */
function swarmSpec(name, replicas, { cmd = SLEEP_CMD, env = [], restartDelayNs, ports, update } = {}) {
  return {
    Name: name,
    Labels: { [BENCH_LABEL]: '1' },
    TaskTemplate: {
      ContainerSpec: { Image: BUSYBOX, Command: cmd, Env: env, StopGracePeriod: 2e9 },
      ...(restartDelayNs !== undefined ? { RestartPolicy: { Condition: 'any', Delay: restartDelayNs } } : {}),
    },
    Mode: { Replicated: { Replicas: replicas } },
    ...(update ? { UpdateConfig: update } : {}),
    ...(ports ? { EndpointSpec: { Ports: ports } } : {}),
  };
}

async function swarmTasks(name) {
  return docker.listTasks({ filters: { service: [name] } });
}

/** Swarm converged: exactly n tasks running, none wanted running but not running (as in the peer runs). */
async function swarmRunning(name, n, pred = () => true) {
  const ts = await swarmTasks(name);
  const run = ts.filter((t) => t.Status.State === 'running' && t.DesiredState === 'running');
  const pending = ts.filter((t) => t.DesiredState === 'running' && t.Status.State !== 'running');
  return run.length === n && pending.length === 0 && run.every(pred) ? run : false;
}

async function swarmRemove(name) {
  await docker.getService(name).remove().catch((e) => { if (e.statusCode !== 404) throw e; });
  await pollUntil(async () => (await containersOf({ 'com.docker.swarm.service.name': name })).length === 0, 60000, 100, `swarm ${name}'s containers to go`);
}

async function swarmUpdate(name, change) {
  const svc = await docker.getService(name).inspect();
  await docker.getService(name).update({ version: svc.Version.Index, ...change(svc.Spec) });
}

/** The floor: n containers created and started in parallel, nothing else. */
async function floorStart(n) {
  const t0 = now();
  const ids = await Promise.all(Array.from({ length: n }, async () => {
    const c = await docker.createContainer({ Image: BUSYBOX, Cmd: SLEEP_CMD, Labels: { [BENCH_LABEL]: 'floor' }, HostConfig: { RestartPolicy: { Name: 'no' } } });
    await c.start();
    return c.id;
  }));
  return { ms: now() - t0, ids };
}

const floorRemoveAll = async () => removeContainers(await containersOf({ [BENCH_LABEL]: 'floor' }));

// ---------------------------------------------------------------- swarm lifecycle

let swarmCreated = false;

async function ensureSwarm() {
  const info = await docker.info();
  if (info.Swarm?.LocalNodeState === 'active') {
    if (!info.Swarm.ControlAvailable) throw new Error('this engine is in a swarm but not a manager: cannot create services');
    return { created: false, version: info.ServerVersion };
  }
  await docker.swarmInit({ ListenAddr: '127.0.0.1:2377', AdvertiseAddr: '127.0.0.1:2377' });
  swarmCreated = true;
  log('docker: initialised a single-node swarm on this engine (left again at the end)');
  return { created: true, version: info.ServerVersion };
}

async function leaveSwarm() {
  if (!swarmCreated) return;
  swarmCreated = false;
  await docker.swarmLeave({ force: true }).catch((e) => log(`docker: swarm leave failed: ${e.message}`));
}

// ---------------------------------------------------------------- load (bounded)

/**
 * LOAD_CONC loops, each: GET / on a new connection (busybox httpd closes every connection),
 * then LOAD_PAUSE_MS. A failure is an error (refused, reset, 2 s timeout) or a non-2xx answer.
 */
function startLoad(port) {
  let stop = false;
  const res = { total: 0, ok: 0, failed: 0, kinds: {} };
  const one = () => new Promise((resolve) => {
    let done = false;
    const end = (kind) => {
      if (done) return;
      done = true;
      res.total++;
      if (kind === null) res.ok++;
      else { res.failed++; res.kinds[kind] = (res.kinds[kind] ?? 0) + 1; }
      resolve();
    };
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 2000 }, (r) => {
      r.resume();
      r.on('end', () => end(r.statusCode >= 200 && r.statusCode < 300 ? null : `http_${r.statusCode}`));
      r.on('error', (e) => end(e.code || e.message));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e) => end(e.code || e.message));
  });
  const loops = Promise.all(Array.from({ length: LOAD_CONC }, async () => {
    while (!stop) { await one(); await sleep(LOAD_PAUSE_MS); }
  }));
  return { async stop() { stop = true; await loops; return res; } };
}

async function httpOk(port) {
  const r = await new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 1000 }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode === 200)); });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
  return r;
}

// ---------------------------------------------------------------- measurements

async function createOnce(who, baton, n, rep) {
  const name = `bench_dk_c${n}_${rep}`;
  if (who === 'floor') {
    const r = await floorStart(n);
    await floorRemoveAll();
    return r.ms;
  }
  const t0 = now();
  if (who === 'baton') {
    await baton.create(name, n);
    await pollUntil(() => baton.running(name, n), 120000, POLL_MS, `baton ${name} all running`);
  } else {
    await docker.createService(swarmSpec(name, n));
    await pollUntil(() => swarmRunning(name, n), 120000, POLL_MS, `swarm ${name} all running`);
  }
  const ms = now() - t0;
  await (who === 'baton' ? baton.remove(name) : swarmRemove(name));
  return ms;
}

async function scaleOnce(who, baton, rep) {
  const name = `bench_dk_s_${rep}`;
  if (who === 'floor') {
    await floorStart(10);
    const r = await floorStart(20);
    await floorRemoveAll();
    return r.ms;
  }
  let t0;
  if (who === 'baton') {
    await baton.create(name, 10);
    await pollUntil(() => baton.running(name, 10), 120000, POLL_MS, `baton ${name} at 10`);
    t0 = now();
    await baton.api.call('POST', `/v1/services/${name}/scale`, { replicas: 30 });
    await pollUntil(() => baton.running(name, 30), 120000, POLL_MS, `baton ${name} at 30`);
  } else {
    await docker.createService(swarmSpec(name, 10));
    await pollUntil(() => swarmRunning(name, 10), 120000, POLL_MS, `swarm ${name} at 10`);
    t0 = now();
    await swarmUpdate(name, (s) => ({ ...s, Mode: { Replicated: { Replicas: 30 } } }));
    await pollUntil(() => swarmRunning(name, 30), 120000, POLL_MS, `swarm ${name} at 30`);
  }
  const ms = now() - t0;
  await (who === 'baton' ? baton.remove(name) : swarmRemove(name));
  return ms;
}

/** 10 replicas; command → all 10 running tasks carry the new spec, none pending. */
async function updateOnce(who, baton, rep) {
  const name = `bench_dk_u_${rep}`;
  let t0;
  if (who === 'baton') {
    // Swarm's default order; Baton's own default here would be start-first.
    const update = { parallelism: 2, delay: '0s', monitor: '0s', order: 'stop-first' };
    const svc = await baton.create(name, 10, { env: ['VERSION=1'], update });
    await pollUntil(() => baton.running(name, 10), 120000, POLL_MS, `baton ${name} at 10`);
    const cur = await baton.api.call('GET', `/v1/services/${name}`);
    t0 = now();
    const updated = await baton.api.call('POST', `/v1/services/${name}/update`, { version: cur.version, spec: { ...cur.specInput, env: ['VERSION=2'] } });
    await pollUntil(() => baton.running(name, 10, (t) => t.specVersion === updated.specVersion), 120000, POLL_MS, `baton ${name} all updated`);
    void svc;
  } else {
    const update = { Parallelism: 2, Delay: 0, Order: 'stop-first' };
    await docker.createService(swarmSpec(name, 10, { env: ['VERSION=1'], update }));
    await pollUntil(() => swarmRunning(name, 10), 120000, POLL_MS, `swarm ${name} at 10`);
    t0 = now();
    await swarmUpdate(name, (s) => ({ ...s, TaskTemplate: { ...s.TaskTemplate, ContainerSpec: { ...s.TaskTemplate.ContainerSpec, Env: ['VERSION=2'] } } }));
    await pollUntil(() => swarmRunning(name, 10, (t) => (t.Spec.ContainerSpec.Env ?? []).includes('VERSION=2')), 120000, POLL_MS, `swarm ${name} all updated`);
  }
  const ms = now() - t0;
  await (who === 'baton' ? baton.remove(name) : swarmRemove(name));
  return ms;
}

/** 3 replicas, fresh per repetition; `docker kill` of slot 1's container → another task running in slot 1. */
async function healOnce(who, baton, rep) {
  const name = `bench_dk_h_${who.replace(/\W/g, '')}_${rep}`;
  let victim;
  let ms;
  if (who === 'floor') {
    // What any orchestrator needs at least: the kill itself (the engine answers once the
    // container is dead), then one container created and started.
    const { ids } = await floorStart(1);
    await sleep(HEAL_PAUSE_MS);
    const t0 = now();
    await docker.getContainer(ids[0]).kill();
    await floorStart(1);
    ms = now() - t0;
    await floorRemoveAll();
  } else if (who === 'baton') {
    await baton.create(name, HEAL_REPLICAS);
    const run = await pollUntil(() => baton.running(name, HEAL_REPLICAS), 120000, POLL_MS, `baton ${name} running`);
    await sleep(HEAL_PAUSE_MS);
    const t = run.find((x) => x.slot === 1);
    [victim] = await containersOf({ 'baton.task.id': t.id });
    const t0 = now();
    await docker.getContainer(victim.Id).kill();
    await pollUntil(async () => (await baton.tasks(name)).some((x) => x.slot === 1 && x.id !== t.id && x.desiredState === 'running' && x.status.state === 'running'), 60000, POLL_MS, `baton ${name} slot 1 replaced`);
    ms = now() - t0;
    await baton.remove(name);
  } else {
    await docker.createService(swarmSpec(name, HEAL_REPLICAS, who === 'swarm_delay0' ? { restartDelayNs: 0 } : {}));
    const run = await pollUntil(() => swarmRunning(name, HEAL_REPLICAS), 120000, POLL_MS, `swarm ${name} running`);
    await sleep(HEAL_PAUSE_MS);
    const t = run.find((x) => x.Slot === 1);
    const t0 = now();
    await docker.getContainer(t.Status.ContainerStatus.ContainerID).kill();
    await pollUntil(async () => (await swarmTasks(name)).some((x) => x.Slot === 1 && x.ID !== t.ID && x.DesiredState === 'running' && x.Status.State === 'running'), 60000, POLL_MS, `swarm ${name} slot 1 replaced`);
    ms = now() - t0;
    await swarmRemove(name);
  }
  return ms;
}

/**
 * httpd behind each one's published port; bounded load from LOAD_LEAD_MS before the update to
 * LOAD_TAIL_MS after all new tasks run. Baton: 2 replicas behind its mesh (default stop-first,
 * parallelism 1). Swarm: mode=host publishing allows one replica per node and port, so 1 replica.
 */
async function loadOnce(who, baton, rep) {
  const name = `bench_dk_l_${rep}`;
  let load;
  let updateMs;
  let requests;
  if (who === 'baton') {
    await baton.create(name, 2, { command: HTTPD_CMD, env: ['VERSION=1'], publish: [`${BPORT}:80`], update: { delay: '0s' } });
    await pollUntil(async () => (await baton.running(name, 2, (t) => t.status.ready)) && httpOk(BPORT), 120000, POLL_MS, `baton ${name} serving`);
    load = startLoad(BPORT);
    await sleep(LOAD_LEAD_MS);
    const cur = await baton.api.call('GET', `/v1/services/${name}`);
    const t0 = now();
    const updated = await baton.api.call('POST', `/v1/services/${name}/update`, { version: cur.version, spec: { ...cur.specInput, env: ['VERSION=2'] } });
    await pollUntil(() => baton.running(name, 2, (t) => t.specVersion === updated.specVersion && t.status.ready), 120000, POLL_MS, `baton ${name} updated`);
    updateMs = now() - t0;
  } else {
    await docker.createService(swarmSpec(name, 1, { cmd: HTTPD_CMD, env: ['VERSION=1'], ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: SPORT, PublishMode: 'host' }] }));
    await pollUntil(async () => (await swarmRunning(name, 1)) && httpOk(SPORT), 120000, POLL_MS, `swarm ${name} serving`);
    load = startLoad(SPORT);
    await sleep(LOAD_LEAD_MS);
    const t0 = now();
    await swarmUpdate(name, (s) => ({ ...s, TaskTemplate: { ...s.TaskTemplate, ContainerSpec: { ...s.TaskTemplate.ContainerSpec, Env: ['VERSION=2'] } } }));
    await pollUntil(async () => (await swarmRunning(name, 1, (t) => (t.Spec.ContainerSpec.Env ?? []).includes('VERSION=2'))) && httpOk(SPORT), 120000, POLL_MS, `swarm ${name} updated and serving`);
    updateMs = now() - t0;
  }
  await sleep(LOAD_TAIL_MS);
  requests = await load.stop();
  await (who === 'baton' ? baton.remove(name) : swarmRemove(name));
  return { ...requests, update_ms: updateMs };
}

// ---------------------------------------------------------------- the bench

let cur;

export async function cleanupDocker() {
  const c = cur;
  cur = undefined;
  await c?.baton?.stop().catch((e) => log(`docker: baton stop: ${e.message}`));
  // Only this bench's own objects: services named bench_dk*, containers labelled bench.docker.
  try {
    for (const s of await docker.listServices({ filters: { label: [`${BENCH_LABEL}=1`] } })) await swarmRemove(s.Spec.Name).catch(() => {});
  } catch { /* no swarm */ }
  await floorRemoveAll().catch(() => {});
  await leaveSwarm();
}

const ratio = (a, b) => {
  if (!a?.n || !b?.n) return null;
  const x = a.median / b.median;
  return Math.round(x * 100) / 100;
};

export async function runDockerBench() {
  const out = {
    bench: 'docker', complete: false,
    conditions: { date: new Date().toISOString(), node: process.version, platform: `${os.platform()} ${os.release()} ${os.arch()}`, cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? null, mem_gib: Math.round(os.totalmem() / 2 ** 30), loadavg_start: loadavg() },
    config: { reps: REPS, sizes: SIZES, poll_ms: POLL_MS, image: `${BUSYBOX} (busybox-static FROM scratch, test/harness/images.ts)`, task: SLEEP_CMD.join(' '), http_task: HTTPD_CMD.join(' '), stop_grace_period: '2s', load: `${LOAD_CONC} loops of GET / on a new connection, ${LOAD_PAUSE_MS} ms apart, 2 s timeout`, load_lead_ms: LOAD_LEAD_MS, load_tail_ms: LOAD_TAIL_MS, ports: { baton: BPORT, swarm_host_mode: SPORT } },
  };
  const save = (final = false) => saveResults(RESULTS, 'docker-latest.json', out, final);
  const baton = new BatonUp();
  cur = { baton };
  try {
    await docker.ping();
    await ensureImage();
    const sw = await ensureSwarm();
    out.conditions.docker = sw.version;
    out.conditions.swarm_initialised_by_bench = sw.created;
    const info = await baton.start();
    out.conditions.baton_version = info.version;
    try { out.conditions.baton_commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim(); } catch { /* not a git checkout */ }
    log(`docker: reps ${REPS}, sizes ${SIZES.join(',')}, poll ${POLL_MS} ms, docker ${sw.version}, baton ${info.version} (data ${baton.dir}), load ${loadavg().join(' ')}`);
    // Warm-up, not recorded: the first container, service and Swarm task of the run.
    for (const who of ['floor', 'baton', 'swarm']) await createOnce(who, baton, 1, 'warm');

    const series = async (label, subjects, fn) => {
      const rows = Object.fromEntries(subjects.map((s) => [s, []]));
      for (let i = 0; i < REPS; i++) {
        for (const who of rotate(subjects, i)) {
          const v = await fn(who, i);
          rows[who].push(v);
          log(`docker ${label} rep ${i} ${who}: ${typeof v === 'number' ? `${r1(v)} ms` : JSON.stringify(v)}`);
          await sleep(200);
        }
      }
      return rows;
    };
    if (ONLY.includes('create')) {
      out.create = {};
      for (const n of SIZES) {
        const rows = await series(`create x${n}`, ['baton', 'swarm', 'floor'], (who, i) => createOnce(who, baton, n, i));
        const c = { baton_ms: stats(rows.baton), swarm_ms: stats(rows.swarm), floor_ms: stats(rows.floor) };
        c.ratio_baton_floor = ratio(c.baton_ms, c.floor_ms);
        c.ratio_swarm_floor = ratio(c.swarm_ms, c.floor_ms);
        c.ratio_baton_swarm = ratio(c.baton_ms, c.swarm_ms);
        out.create[`x${n}`] = c;
        save();
      }
    }
    if (ONLY.includes('scale')) {
      const rows = await series('scale 10→30', ['baton', 'swarm', 'floor'], (who, i) => scaleOnce(who, baton, i));
      const c = { baton_ms: stats(rows.baton), swarm_ms: stats(rows.swarm), floor_ms: stats(rows.floor) };
      c.ratio_baton_floor = ratio(c.baton_ms, c.floor_ms);
      c.ratio_swarm_floor = ratio(c.swarm_ms, c.floor_ms);
      c.ratio_baton_swarm = ratio(c.baton_ms, c.swarm_ms);
      out.scale_10_30 = c;
      save();
    }
    if (ONLY.includes('update')) {
      const rows = await series('update x10', ['baton', 'swarm'], (who, i) => updateOnce(who, baton, i));
      out.update_x10 = { baton_ms: stats(rows.baton), swarm_ms: stats(rows.swarm) };
      out.update_x10.ratio_swarm_baton = ratio(out.update_x10.swarm_ms, out.update_x10.baton_ms);
      save();
    }
    if (ONLY.includes('heal')) {
      const rows = await series('heal', ['baton', 'swarm', 'swarm_delay0', 'floor'], (who, i) => healOnce(who, baton, i));
      out.heal = { baton_ms: stats(rows.baton), swarm_default_ms: stats(rows.swarm), swarm_delay0_ms: stats(rows.swarm_delay0), floor_ms: stats(rows.floor) };
      out.heal.ratio_baton_floor = ratio(out.heal.baton_ms, out.heal.floor_ms);
      out.heal.ratio_baton_swarm_default = ratio(out.heal.baton_ms, out.heal.swarm_default_ms);
      out.heal.ratio_baton_swarm_delay0 = ratio(out.heal.baton_ms, out.heal.swarm_delay0_ms);
      save();
    }
    if (ONLY.includes('load')) {
      const rows = await series('update under load', ['baton', 'swarm'], (who, i) => loadOnce(who, baton, i));
      const col = (rs, k) => stats(rs.map((r) => r[k]));
      const kinds = (rs) => rs.reduce((m, r) => { for (const [k, v] of Object.entries(r.kinds)) m[k] = (m[k] ?? 0) + v; return m; }, {});
      out.update_under_load = {
        baton: { replicas: 2, publish: 'mesh (ingress mode)', failed: col(rows.baton, 'failed'), requests: col(rows.baton, 'total'), update_ms: col(rows.baton, 'update_ms'), failure_kinds: kinds(rows.baton) },
        swarm: { replicas: 1, publish: 'mode=host (ingress needs IPVS, absent on this kernel)', failed: col(rows.swarm, 'failed'), requests: col(rows.swarm, 'total'), update_ms: col(rows.swarm, 'update_ms'), failure_kinds: kinds(rows.swarm) },
      };
      save();
    }
    save(true);
    return out;
  } catch (err) {
    baton.failed = true;
    throw err;
  } finally {
    await cleanupDocker();
  }
}

const fmt = (s) => (s && s.n ? `${s.median} [${s.min}–${s.max}]` : '—');

export function dockerTable(o) {
  const L = [];
  L.push(`Baton (docker driver) vs Docker Swarm vs the Engine API floor — ${o.conditions.date}, docker ${o.conditions.docker}, node ${o.conditions.node}, ${o.conditions.cpus} CPUs, load ${o.conditions.loadavg_start.join('/')} → ${o.conditions.loadavg_end?.join('/')}, ${o.config.reps} reps, poll ${o.config.poll_ms} ms. median [min–max] ms.`);
  L.push('');
  L.push('| measurement | Baton | Swarm | floor | Baton/floor | Swarm/floor | Baton/Swarm |');
  L.push('|---|---|---|---|---|---|---|');
  for (const [k, c] of Object.entries(o.create ?? {})) {
    L.push(`| create → all running, N=${k.slice(1)} (ms) | ${fmt(c.baton_ms)} | ${fmt(c.swarm_ms)} | ${fmt(c.floor_ms)} | **${c.ratio_baton_floor ?? '—'}** | ${c.ratio_swarm_floor ?? '—'} | ${c.ratio_baton_swarm ?? '—'} |`);
  }
  const s = o.scale_10_30;
  if (s) L.push(`| scale 10 → 30 → all running (ms) | ${fmt(s.baton_ms)} | ${fmt(s.swarm_ms)} | ${fmt(s.floor_ms)} | **${s.ratio_baton_floor ?? '—'}** | ${s.ratio_swarm_floor ?? '—'} | ${s.ratio_baton_swarm ?? '—'} |`);
  const u = o.update_x10;
  if (u) L.push(`| rolling update of 10, parallelism 2, no delay → all new running (ms) | ${fmt(u.baton_ms)} | ${fmt(u.swarm_ms)} | — | — | — | ${ratio(u.baton_ms, u.swarm_ms) ?? '—'} (Swarm/Baton **${u.ratio_swarm_baton ?? '—'}**) |`);
  const h = o.heal;
  if (h) {
    L.push(`| self-heal: \`docker kill\` → replacement running, defaults (ms)² | ${fmt(h.baton_ms)} | ${fmt(h.swarm_default_ms)} | ${fmt(h.floor_ms)} | ${h.ratio_baton_floor ?? '—'} | ${ratio(h.swarm_default_ms, h.floor_ms) ?? '—'} | **${h.ratio_baton_swarm_default ?? '—'}** |`);
    L.push(`| self-heal, Swarm with \`--restart-delay 0s\` (ms) | ${fmt(h.baton_ms)} | ${fmt(h.swarm_delay0_ms)} | ${fmt(h.floor_ms)} | ${h.ratio_baton_floor ?? '—'} | ${ratio(h.swarm_delay0_ms, h.floor_ms) ?? '—'} | ${h.ratio_baton_swarm_delay0 ?? '—'} |`);
  }
  const l = o.update_under_load;
  if (l) {
    L.push(`| rolling update under load: failed requests (Baton 2 replicas via its mesh; Swarm 1 replica, mode=host¹) | **${fmt(l.baton.failed)}** | ${fmt(l.swarm.failed)} | — | — | — | — |`);
    L.push(`| … requests in the window | ${fmt(l.baton.requests)} | ${fmt(l.swarm.requests)} | — | — | — | — |`);
  }
  L.push('');
  if (h) L.push('² floor: `docker kill` through the Engine API (it answers once the container is dead), then one container created and started; no orchestrator can replace a task faster.');
  L.push('¹ Swarm\'s ingress (routing mesh) needs IPVS, which this kernel lacks: its published port refuses connections here. Host-mode publishing binds the port on the node, one replica per node and port, so its update is stop-first by necessity.');
  return L.join('\n') + '\n';
}

const alone = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (alone) {
  const abort = (why, code) => { log(`aborting: ${why}`); void cleanupDocker().finally(() => process.exit(code)); };
  process.once('SIGINT', () => abort('SIGINT', 130));
  process.once('SIGTERM', () => abort('SIGTERM', 143));
  try {
    const o = await runDockerBench();
    process.stdout.write(dockerTable(o));
    process.exit(0);
  } catch (err) {
    log(`docker bench failed: ${err?.stack ?? err}`);
    process.exit(1);
  }
}
