// Runs Baton's mesh alone for bench/mesh.mjs: one service, backends from argv, an L4 (tcp) and
// an L7 (http) listener on 127.0.0.1. Started as `node --import tsx bench/mesh-proxy.mjs
// <l4Port> <l7Port> <backendPort>...`; prints "ready" on stdout once both listeners are bound.
import { Mesh } from '../src/mesh/index.ts';
import { systemClock } from '../src/lib/clock.ts';
import { silentLogger } from '../src/lib/log.ts';

const [l4, l7, ...backendPorts] = process.argv.slice(2).map(Number);
const mesh = new Mesh({ clock: systemClock, log: silentLogger() });
mesh.setBackends('bench', backendPorts.map((port, i) => ({ id: `b${i}`, host: '127.0.0.1', port })));
const errors = await mesh.setListeners([
  { key: 'l4', serviceId: 'bench', host: '127.0.0.1', port: l4, protocol: 'tcp' },
  { key: 'l7', serviceId: 'bench', host: '127.0.0.1', port: l7, protocol: 'http' },
]);
if (errors.length) { process.stderr.write(JSON.stringify(errors) + '\n'); process.exit(1); }
process.stdout.write('ready\n');
const stop = () => void mesh.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
