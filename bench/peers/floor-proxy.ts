// The floor of bench/peers.ts: the least a Node proxy can add on this machine. A bare node:http
// server that reads the request body and sends it to the mock through an undici Pool with
// `stream()` (undici's fastest response API that still gives a Writable), answering with the
// upstream's status, content type and bytes as they arrive. No auth, no limits, no metrics, no
// logs, no JSON parsing: whatever kuberelay adds above this figure is its own work; what this adds
// over the direct baseline is Node's HTTP server, undici and one more loopback hop.
//
//   node bench/peers/floor-proxy.ts --port N --upstream http://127.0.0.1:M

import http from 'node:http';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values } = parseArgs({ options: { port: { type: 'string' }, upstream: { type: 'string' } } });
if (!values.port || !values.upstream) throw new Error('usage: floor-proxy.ts --port N --upstream URL');
const pool = new Pool(values.upstream, { connections: 256, pipelining: 1, keepAliveTimeout: 60_000 });

const server = http.createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (req.headers.authorization) headers.authorization = req.headers.authorization;
    pool
      .stream(
        { method: 'POST', path: req.url ?? '/', headers, body: Buffer.concat(chunks) },
        ({ statusCode, headers: h }) => {
          res.writeHead(statusCode, { 'content-type': String(h['content-type'] ?? 'application/json') });
          return res;
        },
      )
      .catch((err: Error) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(err.message);
      });
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(values.port), '127.0.0.1');
// A plain exit on SIGTERM (how the bench stops its children), so that --cpu-prof writes a profile.
process.on('SIGTERM', () => process.exit(0));
