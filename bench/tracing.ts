// What tracing costs: the same chat request sent to the mock upstream directly, through a relay with
// tracing off (also with the access log off, to show what it costs) and through a relay with tracing
// on (OTLP/HTTP to a local sink that accepts and counts the exports), in one run, interleaved request by request so that drift hits all three alike.
// Both relays run as the chart runs them by default (LOG_LEVEL=info, access log on, written to a
// file); concurrency 1, undici keep-alive.
//
//   npm run bench:tracing                 (about a minute)
//   npm run bench:tracing -- --requests N
//
// Figures: BENCHMARKS.md, "Tracing".

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'cli', 'index.ts');
const KEY = 'bench-upstream-key';

const { values } = parseArgs({ options: { requests: { type: 'string' }, warmup: { type: 'string' } } });
const N = Number(values.requests ?? 5000);
const WARMUP = Number(values.warmup ?? 500);

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function start(args: string[], env: Record<string, string>, log: string): ChildProcess {
  const fd = openSync(log, 'a');
  return spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', fd, fd],
  });
}

async function ready(url: string) {
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready`);
}

const BODY = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello, bench' }] });

async function send(pool: Pool, pathname: string, auth: string): Promise<number> {
  const t0 = performance.now();
  const res = await pool.request({
    path: pathname,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: auth },
    body: BODY,
  });
  await res.body.arrayBuffer();
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  return performance.now() - t0;
}

const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};

async function main() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kuberelay-bench-tracing-'));
  // The OTLP sink: accepts every export, counts requests and bytes.
  let exports = 0;
  let exportBytes = 0;
  const sink = createServer((req, res) => {
    req.on('data', (c: Buffer) => (exportBytes += c.length));
    req.on('end', () => {
      exports++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const sinkURL = `http://127.0.0.1:${(sink.address() as net.AddressInfo).port}`;

  const mockPort = await freePort();
  const mock = start(
    ['mock-upstream', '--port', String(mockPort), '--api-key', KEY],
    {},
    path.join(dir, 'mock.log'),
  );
  await ready(`http://127.0.0.1:${mockPort}/_mock/health`);
  const config = path.join(dir, 'config.yaml');
  writeFileSync(
    config,
    `apiVersion: v1
kind: Secret
metadata: { name: up }
stringData: { apiKey: ${KEY} }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: bench }
spec:
  provider: openai-compatible
  baseURL: http://127.0.0.1:${mockPort}/v1
  apiKeySecretRef: { name: up }
  models: [{ name: gpt-4o-mini, pricing: { inputPer1M: "0.15", outputPer1M: "0.60" } }]
`,
  );
  const relays: { name: string; port: number; proc: ChildProcess }[] = [];
  for (const [name, env] of [
    ['access log off, tracing off', { KUBERELAY_ACCESS_LOG: 'off' }],
    ['tracing off', {}],
    ['tracing on', { OTEL_EXPORTER_OTLP_ENDPOINT: sinkURL }],
  ] as const) {
    const port = await freePort();
    const proc = start(
      ['relay', '--config', config, '--port', String(port), '--host', '127.0.0.1'],
      {
        KUBERELAY_AUTH: 'none',
        LOG_LEVEL: 'info',
        KUBERELAY_DATA_DIR: path.join(dir, name.replaceAll(/\W+/g, '-')),
        ...env,
      },
      path.join(dir, `${name.replaceAll(/\W+/g, '-')}.log`),
    );
    relays.push({ name, port, proc });
    await ready(`http://127.0.0.1:${port}/readyz`);
  }

  const targets = [
    {
      name: 'direct',
      pool: new Pool(`http://127.0.0.1:${mockPort}`),
      path: '/v1/chat/completions',
      auth: `Bearer ${KEY}`,
    },
    ...relays.map((r) => ({
      name: r.name,
      pool: new Pool(`http://127.0.0.1:${r.port}`),
      path: '/v1/chat/completions',
      auth: 'Bearer unused',
    })),
  ];
  const samples = new Map(targets.map((t) => [t.name, [] as number[]]));
  for (let i = 0; i < WARMUP + N; i++) {
    // Rotate the order each round: no path always goes first.
    for (let j = 0; j < targets.length; j++) {
      const t = targets[(i + j) % targets.length]!;
      const ms = await send(t.pool, t.path, t.auth);
      if (i >= WARMUP) samples.get(t.name)!.push(ms);
    }
  }
  // Let the batch processor flush what the last requests produced.
  await new Promise((r) => setTimeout(r, 6000));

  const direct = samples.get('direct')!;
  const rows = [...samples].map(([name, xs]) => {
    const added =
      name === 'direct'
        ? ''
        : ` | ${(q(xs, 0.5) - q(direct, 0.5)).toFixed(3)} | ${(q(xs, 0.99) - q(direct, 0.99)).toFixed(3)}`;
    return `| ${name} | ${q(xs, 0.5).toFixed(3)} | ${q(xs, 0.99).toFixed(3)}${added || ' | - | -'} |`;
  });
  console.log(
    `## Tracing cost (bench/tracing.ts): ${N} requests per path, concurrency 1, ${os.cpus().length} cores\n`,
  );
  console.log('| path | p50 ms | p99 ms | added p50 ms | added p99 ms |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const r of rows) console.log(r);
  console.log(
    `\nOTLP exports received: ${exports} requests, ${(exportBytes / 1024).toFixed(0)} KiB (${(exportBytes / Math.max(1, N + WARMUP)).toFixed(0)} B per traced request)`,
  );

  for (const t of targets) await t.pool.close();
  for (const r of relays) r.proc.kill('SIGTERM');
  mock.kill('SIGTERM');
  sink.close();
}

await main();
