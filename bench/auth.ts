// Hot-path cost of client keys and request logging: the same relay config served by relay
// processes that differ only in auth and logging, measured in the same run and interleaved round by
// round so drift hits every variant alike. The mock upstream and every relay are child processes;
// this process generates load (undici Pool, keep-alive).
//
//   npm run bench:auth                 about 1.5 minutes; markdown on stdout
//   npm run bench:auth -- --quick      a short smoke run
//
// Variants:
//   off            KUBERELAY_AUTH=none, no database (nothing to authenticate, nothing to log)
//   keys           client keys (cached) + usage rollups, KUBERELAY_LOG_SAMPLE_RATE=0, PostgreSQL
//   keys+logs      the same with a request-log row for every request (sample rate 1), PostgreSQL
//   keys+logs/pglite  keys+logs on embedded PGlite (no DATABASE_URL)
// Plus in-process micro-benchmarks of the two calls the request path makes: authenticate() on a
// cached key and record().

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { FastifyRequest } from 'fastify';
import pino from 'pino';
import { Pool } from 'undici';
import { MemoryStore } from '../core/state/memory-store.ts';
import { PrismaAccounting } from '../db/accounting.ts';
import { acquireDataDirLock } from '../db/data-dir-lock.ts';
import { openDatabase } from '../db/database.ts';
import { PrismaKeyStore } from '../db/keys.ts';
import { applyMigrations } from '../db/migrate.ts';
import { KeyAuthenticator } from '../relay/auth.ts';
import { BudgetTracker } from '../relay/budget.ts';
import { DatabaseHealth } from '../relay/db-health.ts';
import { createRelayMetrics } from '../relay/metrics.ts';
import { DEFAULT_REQUEST_LOG_OPTIONS, RequestLogWriter } from '../relay/request-log.ts';
import { startPostgres } from '../test/helpers/postgres.ts';
import { metric } from '../test/helpers/prometheus-text.ts';
import { oneChannelConfig } from './bench-config.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'cli', 'index.ts');
const UPSTREAM_KEY = 'bench-upstream-key';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean' } } });
const ROUNDS = args.quick ? 2 : 8;
const SERIAL_PER_ROUND = args.quick ? 100 : 400;
const LOAD_SECONDS = args.quick ? 1 : 3;
const CONCURRENCY = 32;

interface Child {
  proc: ChildProcess;
  out: () => string;
}

function start(args: string[], env: Record<string, string>): Child {
  const proc = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-8000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  return { proc, out: () => out };
}

async function stop(c: Child) {
  if (c.proc.exitCode !== null) return;
  const exited = new Promise((r) => c.proc.once('exit', r));
  c.proc.kill('SIGTERM');
  await exited;
}

async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function ready(c: Child, url: string, anyAnswer = false) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (c.proc.exitCode !== null) throw new Error(`exited: ${c.out()}`);
    try {
      const res = await fetch(url);
      if (res.ok || anyAnswer) return;
    } catch {}
    if (Date.now() > deadline) throw new Error(`not ready: ${url}\n${c.out()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function rssMB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

interface Variant {
  name: string;
  env: Record<string, string>;
  key?: string;
  url?: string;
  child?: Child;
  pool?: Pool;
  latency: number[];
  overhead: number[];
  completed: number;
  seconds: number;
  errors: number;
}

const BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'hi' }],
  max_tokens: 8,
});

async function send(v: Variant): Promise<{ ms: number; overhead: number }> {
  const t0 = performance.now();
  const res = await v.pool!.request({
    path: '/v1/chat/completions',
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(v.key ? { authorization: `Bearer ${v.key}` } : {}) },
    body: BODY,
  });
  await res.body.dump();
  if (res.statusCode !== 200) throw new Error(`${v.name}: HTTP ${res.statusCode}`);
  return { ms: performance.now() - t0, overhead: Number(res.headers['x-kuberelay-overhead-ms']) };
}

async function serial(v: Variant, n: number) {
  for (let i = 0; i < n; i++) {
    const s = await send(v);
    v.latency.push(s.ms);
    v.overhead.push(s.overhead);
  }
}

async function load(v: Variant, seconds: number) {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        try {
          await send(v);
          done++;
        } catch {
          v.errors++;
        }
      }
    }),
  );
  v.completed += done;
  v.seconds += seconds;
}

/** In-process: the two calls the request path makes, per call, on a warm cache. */
async function micro(url: string, secret: string) {
  const db = await openDatabase({ url, dataDir: os.tmpdir() });
  const metrics = createRelayMetrics({ defaultMetrics: false });
  const log = pino({ level: 'silent' });
  const health = new DatabaseHealth(metrics, log);
  const accounting = new PrismaAccounting(db);
  const auth = new KeyAuthenticator({
    keys: new PrismaKeyStore(db),
    budgets: new BudgetTracker(new MemoryStore(), accounting, health),
    metrics,
    health,
  });
  await auth.start();
  const req = {
    headers: { authorization: `Bearer ${secret}` },
    body: { model: 'gpt-4o-mini' },
  } as unknown as FastifyRequest;
  await auth.authenticate(req);
  const writer = new RequestLogWriter(accounting, metrics, health, {
    ...DEFAULT_REQUEST_LOG_OPTIONS,
    maxBuffer: 1e9,
  });
  const rec = {
    requestId: 'r',
    at: Date.now(),
    keyId: 'key_x',
    route: '/v1/chat/completions',
    model: 'gpt-4o-mini',
    channel: 'default/bench',
    status: 200,
    durationMs: 3,
    attempts: 1,
    stream: false,
    promptTokens: 5,
    completionTokens: 8,
    cachedTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
    cost: 0.0001,
  };
  const perCall = async (fn: () => unknown, n: number) => {
    const runs: number[] = [];
    for (let r = 0; r < 7; r++) {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await fn();
      runs.push(((performance.now() - t0) * 1000) / n);
    }
    return quantile(runs, 0.5);
  };
  const authUs = await perCall(() => auth.authenticate(req), 50_000);
  const recordUs = await perCall(() => writer.record(rec), 50_000);
  auth.stop();
  await db.close();
  return { authUs, recordUs };
}

async function main() {
  const pg = await startPostgres();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kuberelay-bench-auth-'));
  const children: Child[] = [];
  try {
    const mockPort = await freePort();
    const mock = start(
      ['mock-upstream', '--port', String(mockPort), '--host', '127.0.0.1', '--api-key', UPSTREAM_KEY],
      {},
    );
    children.push(mock);
    await ready(mock, `http://127.0.0.1:${mockPort}/v1/models`, true); // 401 without its key: up
    const config = path.join(dir, 'config.yaml');
    writeFileSync(
      config,
      oneChannelConfig({ baseURL: `http://127.0.0.1:${mockPort}/v1`, apiKey: UPSTREAM_KEY }),
    );

    // One PostgreSQL database for the PostgreSQL variants, one data directory for PGlite.
    const url = await pg.createDatabase('bench');
    const pgDb = await openDatabase({ url, dataDir: dir });
    await applyMigrations(pgDb);
    const pgKey = (await new PrismaKeyStore(pgDb).create({ name: 'bench' })).secret;
    await pgDb.close();
    const dataDir = path.join(dir, 'pglite');
    const lock = await acquireDataDirLock(dataDir, 'bench');
    const lite = await openDatabase({ dataDir });
    await applyMigrations(lite);
    const liteKey = (await new PrismaKeyStore(lite).create({ name: 'bench' })).secret;
    await lite.close();
    await lock.release();

    const variant = (name: string, env: Record<string, string>, key?: string): Variant => ({
      name,
      env,
      key,
      latency: [],
      overhead: [],
      completed: 0,
      seconds: 0,
      errors: 0,
    });
    const variants = [
      variant('off', { KUBERELAY_AUTH: 'none' }),
      variant('keys', { KUBERELAY_AUTH: 'keys', DATABASE_URL: url, KUBERELAY_LOG_SAMPLE_RATE: '0' }, pgKey),
      variant(
        'keys+logs',
        { KUBERELAY_AUTH: 'keys', DATABASE_URL: url, KUBERELAY_LOG_SAMPLE_RATE: '1' },
        pgKey,
      ),
      variant(
        'keys+logs/pglite',
        { KUBERELAY_AUTH: 'keys', KUBERELAY_DATA_DIR: dataDir, KUBERELAY_LOG_SAMPLE_RATE: '1' },
        liteKey,
      ),
    ];
    for (const v of variants) {
      const port = await freePort();
      v.child = start(['relay', '--config', config, '--port', String(port), '--host', '127.0.0.1'], {
        ADMIN_PORT: '0',
        ...v.env,
      });
      children.push(v.child);
      v.url = `http://127.0.0.1:${port}`;
      await ready(v.child, `${v.url}/readyz`);
      v.pool = new Pool(v.url, { connections: CONCURRENCY, pipelining: 1 });
      await serial(v, 200); // warm-up: JIT, connection pool, key cache
      v.latency = [];
      v.overhead = [];
    }

    for (let round = 0; round < ROUNDS; round++) {
      for (const v of variants) await serial(v, SERIAL_PER_ROUND);
      for (const v of variants) await load(v, LOAD_SECONDS);
      process.stderr.write(`round ${round + 1}/${ROUNDS}\n`);
    }
    await new Promise((r) => setTimeout(r, 1500)); // let the writers flush

    const rows: string[][] = [];
    for (const v of variants) {
      const written = v.key ? await metric(v.url!, 'kuberelay_request_logs_written_total') : 0;
      const dropped = v.key ? await metric(v.url!, 'kuberelay_request_logs_dropped_total') : 0;
      rows.push([
        v.name,
        quantile(v.latency, 0.5).toFixed(3),
        quantile(v.latency, 0.99).toFixed(3),
        quantile(v.overhead, 0.5).toFixed(3),
        quantile(v.overhead, 0.99).toFixed(3),
        Math.round(v.completed / v.seconds).toString(),
        String(v.errors),
        rssMB(v.child!.proc.pid!).toFixed(0),
        v.key ? `${written} / ${dropped}` : '-',
      ]);
    }
    const m = await micro(url, pgKey);
    const head = [
      'variant',
      'c=1 p50 ms',
      'c=1 p99 ms',
      'overhead p50 ms',
      'overhead p99 ms',
      `req/s c=${CONCURRENCY}`,
      'errors',
      'relay RSS MB',
      'log rows written / dropped',
    ];
    const md = [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
    process.stdout.write(
      `\n${md}\n\nIn-process, per call on a warm cache (median of 7 x 50,000): authenticate() ${m.authUs.toFixed(2)} µs, record() ${m.recordUs.toFixed(2)} µs.\n` +
        `${os.cpus().length} CPUs (${os.cpus()[0]?.model}), Node ${process.version}, ${ROUNDS} rounds of ${SERIAL_PER_ROUND} serial requests and ${LOAD_SECONDS} s at concurrency ${CONCURRENCY} per variant.\n`,
    );
    for (const v of variants) await v.pool!.close();
  } finally {
    for (const c of children.reverse()) await stop(c);
    await pg.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
