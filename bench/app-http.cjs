// Copied from shared/bench/peers/app-http.cjs so Baton, PM2 and the spawn floor run the same app.
// Tiny HTTP server used as the app under PM2 and as the proxy-floor backend.
// Replies with its pid so cluster-mode tests can tell workers apart.
// BENCH_GRACEFUL=1: on SIGINT/SIGTERM stop accepting, finish in-flight requests, then exit.
const http = require('node:http');
const port = Number(process.env.PORT || 0);
const body = String(process.pid) + '\n';
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 5000;
server.listen(port, '127.0.0.1', () => { if (process.send) process.send('ready'); });
if (process.env.BENCH_GRACEFUL === '1') {
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    // keep-alive sockets that are mid-request get Connection: close on their reply
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
