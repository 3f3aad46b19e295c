// Two builds of the relay side by side, to compare what a change costs in CPU on a machine that is
// not quiet: one mock upstream, one loader, both relays running at once, each started as
// bench:peers starts kuberelay (bench/peers/targets.ts: a tsc build, client keys on the embedded
// database or PostgreSQL, the `limits` scenario's two RateLimitPolicies, the default log level with
// the access log on, the image's Node flags), closed-loop load sent to one relay at a time in ABBA
// segments (AB BA BA AB ...), and each relay's CPU time (from /proc) per request over its own
// segments. Drift and the neighbours' load hit both alike; the paired per-round difference gets a
// bootstrap interval. bench:peers --compare gives the full picture (latency, streams, memory,
// peers); this gives one figure, quickly, on a busy machine.
//
//   node bench/ab-relays.ts --a-ref main                 A built from a commit, B the working tree
//   node bench/ab-relays.ts --a OLD.js --b NEW.js        two CLI entry points already built
//   node bench/ab-relays.ts --a-ref HEAD --b-node-args=--single-threaded-gc    one build, a flag
//   options: --rounds 24 --segment 3 --concurrency 32 --database embedded|postgres (or --postgres:
//            each relay logs requests and usage to its own database on one PostgreSQL server,
//            whose CPU per request is reported too)
//            --a-node-args=FLAGS --b-node-args=FLAGS (added to the image's NODE_OPTIONS)
//            --a-env K=V --b-env K=V (repeatable: more environment, e.g. KUBERELAY_ACCESS_LOG=off)
//            --a-scenario S --b-scenario S (a bench/run scenario other than `limits`, e.g. passthrough):
//            with --b-ref HEAD and one of these, what a feature costs
//            --memory-limit chart|none|Q (default chart: each relay in a memory cgroup of the chart's
//            relay limit, as in a pod; Node sizes V8's heap from it, which changes its GC's cost)

import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { type Postgres, startPostgres } from '../test/helpers/postgres.ts';
import { type Child, envPairs, freePort, ROOT, startChild, stopChild, waitReady } from './lib/children.ts';
import { compileKuberelay, exportRef } from './lib/compile.ts';
import { drive, newAcc, roundOrder } from './lib/load.ts';
import { memoryLimitParam, openMemoryLimits } from './lib/memory-limit.ts';
import { log } from './lib/meta.ts';
import { readProc, readProcTree } from './lib/proc.ts';
import { chatBody, type Target } from './lib/requests.ts';
import { prng } from './lib/stats.ts';
import { startKuberelay } from './peers/targets.ts';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    'a-ref': { type: 'string' },
    b: { type: 'string' },
    'b-ref': { type: 'string' },
    rounds: { type: 'string', default: '24' },
    segment: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '32' },
    database: { type: 'string', default: 'embedded' },
    postgres: { type: 'boolean', default: false },
    'a-node-args': { type: 'string', default: '' },
    'b-node-args': { type: 'string', default: '' },
    'a-env': { type: 'string', multiple: true, default: [] },
    'b-env': { type: 'string', multiple: true, default: [] },
    'a-scenario': { type: 'string' },
    'b-scenario': { type: 'string' },
    'memory-limit': { type: 'string', default: 'chart' },
  },
});
if (!values.a === !values['a-ref'] || (values.b && values['b-ref'])) {
  console.error(
    'usage: node bench/ab-relays.ts (--a CLI_A | --a-ref REV) [--b CLI_B | --b-ref REV] [--rounds N] [--segment S]',
  );
  process.exit(2);
}
if (values.postgres) values.database = 'postgres';
if (values.database !== 'embedded' && values.database !== 'postgres')
  throw new Error('--database must be embedded or postgres');
const [rounds, segmentS, concurrency] = [
  Number(values.rounds),
  Number(values.segment),
  Number(values.concurrency),
];

const memoryQuantity = memoryLimitParam(values['memory-limit'], ROOT);

const tmp = mkdtempSync(path.join(os.tmpdir(), 'kuberelay-ab-'));
/** A CLI entry point: given, built from a commit, or (B's default) the working tree built. */
function build(name: string, cli: string | undefined, ref: string | undefined): string {
  if (cli) return path.resolve(cli);
  const dir = path.join(tmp, name);
  return compileKuberelay(dir, ref ? exportRef(ref, path.join(dir, 'src')) : ROOT);
}
const clis = { A: build('A', values.a, values['a-ref']), B: build('B', values.b, values['b-ref']) };
const nodeArgs = {
  A: values['a-node-args'].split(/\s+/).filter(Boolean),
  B: values['b-node-args'].split(/\s+/).filter(Boolean),
};
const sideOpts = {
  A: { env: envPairs(values['a-env'], '--a-env'), scenario: values['a-scenario'] },
  B: { env: envPairs(values['b-env'], '--b-env'), scenario: values['b-scenario'] },
};

const KEY = 'bench-mock-key';
const children: Child[] = [];
const mockPort = await freePort();
const mockURL = `http://127.0.0.1:${mockPort}`;
const mock = startChild(
  'mock upstream',
  [
    path.join(ROOT, 'cli/index.ts'),
    'mock-upstream',
    '--port',
    String(mockPort),
    '--host',
    '127.0.0.1',
    '--api-key',
    KEY,
  ],
  {},
);
children.push(mock);
let pg: Postgres | undefined;

interface Side {
  name: string;
  child: Child;
  target: Target;
  cpuMs: number;
  dbCpuMs: number;
  requests: number;
  perRound: number[];
}
const sides: Side[] = [];
const { limits, memoryLimit } = openMemoryLimits(memoryQuantity, log);
try {
  await waitReady(mock, `${mockURL}/_mock/health`);
  if (values.database === 'postgres') pg = await startPostgres();
  const pgPid = pg ? pidListeningOn(pg.port) : undefined;
  const dbCpuMs = () => (pgPid ? readProcTree(pgPid)!.cpuMs : 0);
  for (const [name, cli] of Object.entries(clis)) {
    const dir = mkdtempSync(path.join(tmp, `run-${name}-`));
    const databaseUrl = await pg?.createDatabase(`kuberelay_${name.toLowerCase()}`);
    const up = { url: mockURL, apiKey: KEY };
    const r = await startKuberelay(up, dir, {
      cli,
      nodeArgs: nodeArgs[name as 'A' | 'B'],
      ...sideOpts[name as 'A' | 'B'],
      databaseUrl,
      wrap: limits?.next(`relay-${name}`),
    });
    children.push(r.child);
    const pool = new Pool(r.url, { connections: concurrency, pipelining: 1 });
    const target = { name, pool, headers: r.headers };
    sides.push({ name, child: r.child, target, cpuMs: 0, dbCpuMs: 0, requests: 0, perRound: [] });
  }
  const spec = { path: '/v1/chat/completions', body: chatBody(32, false), stream: false };
  for (const s of sides) await drive(s.target, spec, concurrency, 2, newAcc()); // JIT warm-up
  let errors = 0;
  for (let i = 0; i < rounds; i++) {
    for (const s of roundOrder(sides, i)) {
      const acc = newAcc();
      const before = readProc(s.child.pid)!.cpuMs;
      const dbBefore = dbCpuMs();
      await drive(s.target, spec, concurrency, segmentS, acc);
      const cpu = readProc(s.child.pid)!.cpuMs - before;
      // The relay flushes its logs every second: most of a segment's rows are written in it.
      s.dbCpuMs += dbCpuMs() - dbBefore;
      errors += acc.errors.count;
      s.cpuMs += cpu;
      s.requests += acc.latencies.length;
      s.perRound.push(cpu / Math.max(1, acc.latencies.length));
    }
  }
  const [a, b] = sides as [Side, Side];
  const diffs = a.perRound.map((x, i) => b.perRound[i]! - x);
  const db = pg ? ' PostgreSQL CPU ms/request |' : '';
  console.log(`| relay | requests | CPU ms/request |${db}\n| --- | --- | --- |${pg ? ' --- |' : ''}`);
  for (const s of sides) {
    const dbCell = pg ? ` ${(s.dbCpuMs / s.requests).toFixed(3)} |` : '';
    console.log(`| ${s.name} | ${s.requests} | ${(s.cpuMs / s.requests).toFixed(3)} |${dbCell}`);
  }
  const [lo, hi] = bootstrapMean(diffs);
  const limitNote = memoryLimit.applied
    ? `each relay under a ${memoryLimit.quantity} memory limit`
    : `no memory limit${memoryLimit.reason ? ` (${memoryLimit.reason})` : ''}`;
  const faster = diffs.filter((d) => d < 0).length;
  console.log(
    `\nB - A per round: mean ${mean(diffs).toFixed(3)} ms [95% CI ${lo.toFixed(3)}, ${hi.toFixed(3)}], ` +
      `B lower in ${faster} of ${diffs.length} rounds; errors ${errors}; ${limitNote}; ` +
      `load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  );
} finally {
  for (const s of sides) await s.target.pool.close();
  for (const c of children) await stopChild(c);
  await pg?.close();
  limits?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
}

/** The process with a listening TCP socket on `port` (PostgreSQL's postmaster), from /proc. */
function pidListeningOn(port: number): number {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && f[1]?.endsWith(hex)) inodes.add(`socket:[${f[9]}]`);
    }
  }
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        if (inodes.has(readlinkSync(`/proc/${pid}/fd/${fd}`))) return Number(pid);
      }
    } catch {}
  }
  throw new Error(`no process listens on port ${port}`);
}

function mean(xs: number[]) {
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

/** 95 % interval of the mean by resampling (a fixed seed, so a run's figures are reproducible). */
function bootstrapMean(xs: number[], n = 5000): [number, number] {
  const rand = prng(1);
  const means: number[] = [];
  for (let k = 0; k < n; k++) {
    let s = 0;
    for (let i = 0; i < xs.length; i++) s += xs[Math.floor(rand() * xs.length)]!;
    means.push(s / xs.length);
  }
  means.sort((p, q) => p - q);
  return [means[Math.floor(n * 0.025)]!, means[Math.floor(n * 0.975)]!];
}
