// A tiny HTTP server for Baton's examples and tests: answers on $PORT with a greeting,
// its task slot and pid; stops gracefully on SIGTERM.
import http from "node:http";

const greeting = process.env.GREETING ?? "hello";
const server = http.createServer((req, res) => {
  const body = `${greeting} from ${process.env.BATON_SERVICE_NAME ?? "?"}.${process.env.BATON_TASK_SLOT ?? "?"} pid ${process.pid}\n`;
  res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(body) });
  res.end(body);
});
server.listen(Number(process.env.PORT ?? 8080), () => {
  console.log(`listening on ${server.address().port}`);
});
process.on("SIGTERM", () => {
  console.log("SIGTERM: closing");
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
