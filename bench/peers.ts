// kuberelay next to its peers, in one run with one loader and one mock upstream: Portkey's gateway
// (Node) and LiteLLM's proxy (Python, one worker), each installed at a pinned version into a cache
// outside the repository (bench/peers/install.ts), and the mock called directly as the baseline.
//
//   npm run bench:peers                  about 3 minutes once the peers are installed
//   npm run bench:peers -- --quick       behaviour only: a few requests per path
//   npm run bench:peers -- --help        every option
//
// Concurrency 1: every round sends one request to each target, in an ABBA-style rotation, so drift
// hits all alike; added latency is percentile(target) - percentile(direct) with bootstrap intervals.
// Streams: first token and completion the same way. Load: closed loop at --concurrency per target,
// in ABBA segments (forwards, then backwards), with each gateway's CPU time (its process tree, from
// /proc) per request, and its RSS sampled 10 times a second. A peer that cannot be installed or
// started is reported as such and the others still run. A bare Node proxy (bench/peers/floor-proxy.ts)
// runs beside them as the floor: what any Node proxy adds on this machine. Method and figures:
// BENCHMARKS.md.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { type Postgres, startPostgres } from '../test/helpers/postgres.ts';
import { type Child, freePort, ROOT, startChild, stopChild, waitReady } from './lib/children.ts';
import { compileKuberelay, exportRef } from './lib/compile.ts';
import { drive, interleave, newAcc, roundOrder } from './lib/load.ts';
import { type MemoryLimits, memoryLimitParam, openMemoryLimits } from './lib/memory-limit.ts';
import { gitCommit, log } from './lib/meta.ts';
import { machineBusyMs, readProcTree } from './lib/proc.ts';
import {
  chatBody,
  type Errors,
  type RequestSpec,
  type Sample,
  setMockFaults,
  type Target,
} from './lib/requests.ts';
import { added, stats } from './lib/stats.ts';
import {
  type Installed,
  installLiteLLM,
  installPortkey,
  LITELLM_VERSION,
  PORTKEY_VERSION,
} from './peers/install.ts';
import { renderPeers } from './peers/report.ts';
import type { GatewayResult, PeerParams, PeersResult } from './peers/result.ts';
import {
  CLI,
  type Running,
  startFloor,
  startKuberelay,
  startLiteLLM,
  startPortkey,
  type Upstream,
} from './peers/targets.ts';

const MOCK_API_KEY = 'bench-upstream-key';
const PEERS = ['portkey', 'litellm'] as const;

const HELP = `usage: node bench/peers.ts [options]      (npm run bench:peers -- [options])

  --quick                 a few requests per path (behaviour only; figures are not meaningful)
  --json FILE             write the raw result object to FILE
  --peers LIST            which peers, of portkey,litellm (default both)
  --no-install            use only peers already in the cache (KUBERELAY_PEERS_DIR, default ~/.cache/kuberelay/peers)
  --rounds N              concurrency-1 chat rounds, one request per target each (default 3000; quick 20)
  --stream-rounds N       concurrency-1 stream rounds (default 300; quick 5)
  --stream-tokens N       content chunks per stream (default 16)
  --chunk-delay-ms MS     delay between streamed chunks at the mock (default 1)
  --stream-end HOW        how the mock ends a stream: "together" (the last events and the chunked
                          terminator in one write, as Node's res.end does; default) or "split" (the
                          terminator 1 ms after [DONE] in a write of its own, as uvicorn/Starlette,
                          hence vLLM and most Python servers, send it)
  --concurrency N         closed-loop workers per target (default 32)
  --duration S            load seconds measured per target (default 6; quick 0.4)
  --load-warmup S         load warm-up seconds per target (default 1; quick 0.1)
  --load-segments N       segments the load of each target is cut into, rotated over the targets
                          ABBA-style so drift hits all alike (default 6; quick 2)
  --database postgres|embedded  kuberelay's key store: a local PostgreSQL (default) or embedded PGlite
  --sources               run kuberelay from the .ts sources (default: a tsc build, as the image runs it)
  --relay-node-args=A     extra node flags for kuberelay (e.g. "--relay-node-args=--cpu-prof --cpu-prof-dir=/tmp/prof")
  --compare REF           also measure kuberelay built from commit REF, interleaved with the others
                          (before/after in one run; its own database, the same config)
  --memory-limit Q        each gateway (floor, kuberelay, peers) in a memory cgroup of its own limited
                          to Q, as a pod's container: "chart" (default: the chart's relay limit,
                          relay.resources.limits.memory), "none", or a quantity such as 512Mi. Node
                          sizes V8's heap from it; without a cgroup controller here, none (reported)
`;

function parseParams(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean' },
      quick: { type: 'boolean' },
      json: { type: 'string' },
      peers: { type: 'string' },
      'no-install': { type: 'boolean' },
      rounds: { type: 'string' },
      'stream-rounds': { type: 'string' },
      'stream-tokens': { type: 'string' },
      'chunk-delay-ms': { type: 'string' },
      'stream-end': { type: 'string' },
      concurrency: { type: 'string' },
      duration: { type: 'string' },
      'load-warmup': { type: 'string' },
      'load-segments': { type: 'string' },
      'relay-node-args': { type: 'string' },
      database: { type: 'string' },
      sources: { type: 'boolean' },
      compare: { type: 'string' },
      'memory-limit': { type: 'string' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const quick = values.quick === true;
  const num = (name: string, v: string | undefined, dflt: number, min: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}`);
    return n;
  };
  const peers = (values.peers ?? PEERS.join(',')).split(',').map((s) => s.trim());
  for (const p of peers) {
    if (!(PEERS as readonly string[]).includes(p))
      throw new Error(`--peers: unknown peer ${p}; known: ${PEERS.join(', ')}`);
  }
  const streamEnd = values['stream-end'] ?? 'together';
  if (streamEnd !== 'together' && streamEnd !== 'split')
    throw new Error('--stream-end must be together or split');
  const database = values.database ?? 'postgres';
  if (database !== 'postgres' && database !== 'embedded')
    throw new Error('--database must be postgres or embedded');
  const params: PeerParams = {
    database,
    compiled: values.sources !== true,
    quick,
    rounds: num('rounds', values.rounds, quick ? 20 : 3000, 1),
    warmup: quick ? 5 : 300,
    streamRounds: num('stream-rounds', values['stream-rounds'], quick ? 5 : 300, 1),
    streamWarmup: quick ? 2 : 30,
    streamTokens: num('stream-tokens', values['stream-tokens'], 16, 1),
    chunkDelayMs: num('chunk-delay-ms', values['chunk-delay-ms'], 1, 0),
    streamEnd,
    concurrency: num('concurrency', values.concurrency, 32, 1),
    durationS: num('duration', values.duration, quick ? 0.4 : 6, 0.1),
    loadWarmupS: num('load-warmup', values['load-warmup'], quick ? 0.1 : 1, 0),
    loadSegments: num('load-segments', values['load-segments'], quick ? 2 : 6, 1),
    install: values['no-install'] !== true,
    peers,
    relayNodeArgs: (values['relay-node-args'] ?? '').split(/\s+/).filter(Boolean),
    compare: values.compare,
    memoryLimit: memoryLimitParam(values['memory-limit'] ?? 'chart', ROOT),
  };
  return { params, jsonFile: values.json };
}

interface Gateway {
  result: GatewayResult;
  running?: Running;
  target?: Target;
  peakBytes: number;
}

export async function runPeers(argv: string[]): Promise<PeersResult> {
  const { params, jsonFile } = parseParams(argv);
  if (Number(process.versions.node.split('.')[0]) < 24)
    throw new Error(
      `Node ${process.versions.node}: the bench needs Node 24 (run it with npm run bench:peers)`,
    );
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const loadavgStart = os.loadavg();
  const commit = gitCommit(); // what the build below is made of
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'kuberelay-peers-'));
  const children: Child[] = [];
  const pools: Pool[] = [];
  let pg: Postgres | undefined;
  const { limits, memoryLimit } = openMemoryLimits(params.memoryLimit, log);
  const onSignal = () => {
    for (const c of children) c.proc.kill('SIGKILL');
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const mockPort = await freePort();
    const up: Upstream = { url: `http://127.0.0.1:${mockPort}`, apiKey: MOCK_API_KEY };
    const mock = startChild(
      'mock upstream',
      [CLI, 'mock-upstream', '--port', String(mockPort), '--host', '127.0.0.1', '--api-key', MOCK_API_KEY],
      {},
    );
    children.push(mock);
    await waitReady(mock, `${up.url}/_mock/health`);

    let databaseUrl: string | undefined;
    let refDatabaseUrl: string | undefined;
    if (params.database === 'postgres') {
      pg = await startPostgres();
      databaseUrl = await pg.createDatabase('kuberelay');
      if (params.compare) refDatabaseUrl = await pg.createDatabase('kuberelay_ref');
    }
    const cli = params.compiled ? compileKuberelay(path.join(tmp, 'build')) : CLI;
    const ref = params.compare ? buildRef(params.compare, tmp, params.compiled) : undefined;
    const gateways = await startGateways(up, tmp, params, children, limits, {
      cli,
      databaseUrl,
      ref: ref === undefined ? undefined : { cli: ref, databaseUrl: refDatabaseUrl },
    });
    // Bounded: a gateway that stops answering fails its requests, it does not stall the run.
    const poolOpts = {
      connections: params.concurrency,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    };
    for (const g of gateways) {
      if (!g.running) continue;
      const pool = new Pool(g.running.url, poolOpts);
      pools.push(pool);
      g.target = { name: g.result.name, pool, headers: g.running.headers };
    }
    const live = gateways.filter((g) => g.target);
    await measureSerial(live, params, up);
    await measureLoad(live, params);
    for (const g of live) {
      const end = readProcTree(g.running!.child.pid);
      if (g.result.rss && end) g.result.rss.peakBytes = Math.max(g.peakBytes, end.hwmBytes);
      if (g.running!.child.proc.exitCode !== null) {
        g.result.status = 'failed';
        g.result.reason = `exited during the run: ${g.running!.child.output().slice(-500)}`;
      }
    }
    const result: PeersResult = {
      version: 1,
      startedAt,
      meta: {
        node: process.version,
        cpus: os.availableParallelism(),
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        commit,
        loadavgStart,
        loadavgEnd: os.loadavg(),
      },
      params,
      memoryLimit,
      gateways: gateways.map((g) => g.result),
      totalErrors: gateways.reduce((n, g) => n + g.result.errors, 0),
      ownErrors: gateways
        .filter((g) => ['direct', 'floor', 'kuberelay', 'kuberelay-ref'].includes(g.result.name))
        .reduce((n, g) => n + g.result.errors, 0),
      durationS: (performance.now() - t0) / 1000,
    };
    if (jsonFile) writeFileSync(jsonFile, `${JSON.stringify(result, null, 2)}\n`);
    return result;
  } finally {
    await Promise.allSettled(pools.map((p) => p.close()));
    await Promise.allSettled(children.reverse().map((c) => stopChild(c)));
    await pg?.close();
    limits?.cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The direct baseline, kuberelay and each peer that installs and starts. */
async function startGateways(
  up: Upstream,
  tmp: string,
  params: PeerParams,
  children: Child[],
  limits: MemoryLimits | undefined,
  kr: {
    cli: string;
    databaseUrl: string | undefined;
    ref?: { cli: string; databaseUrl: string | undefined };
  },
) {
  const gateway = (name: string, label: string): Gateway => ({
    result: { name, label, status: 'measured', errors: 0, errorSamples: [] },
    peakBytes: 0,
  });
  const direct = gateway('direct', 'direct (mock upstream)');
  direct.running = {
    child: children[0]!,
    url: up.url,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${up.apiKey}` },
  };
  const out = [direct];
  const start = async (g: Gateway, how: () => Promise<Running>) => {
    out.push(g);
    try {
      g.running = await how();
      children.push(g.running.child);
      const idle = readProcTree(g.running.child.pid);
      g.result.rss = { idleBytes: idle?.rssBytes ?? Number.NaN, peakBytes: 0 };
      log(`${g.result.label}: pid ${g.running.child.pid} at ${g.running.url}`);
    } catch (err) {
      g.result.status = 'failed to start';
      g.result.reason = (err as Error).message.slice(0, 1000);
      log(`${g.result.label}: failed to start: ${g.result.reason}`);
    }
  };
  // The least a Node proxy adds here: kuberelay's own work is what it adds above this.
  const floor = gateway('floor', 'floor: bare node:http + undici proxy');
  const wrap = (name: string) => limits?.next(name);
  await start(floor, () => startFloor(up, wrap('floor')));
  const kuberelay = gateway('kuberelay', 'kuberelay');
  const nodeArgs = params.relayNodeArgs;
  await start(kuberelay, () =>
    startKuberelay(up, tmp, { cli: kr.cli, databaseUrl: kr.databaseUrl, nodeArgs, wrap: wrap('kuberelay') }),
  );
  if (!kuberelay.running) throw new Error(`kuberelay did not start: ${kuberelay.result.reason}`);
  if (kr.ref) {
    const before = gateway('kuberelay-ref', `kuberelay at ${params.compare}`);
    const dir = path.join(tmp, 'ref-run');
    mkdirSync(dir);
    await start(before, () => startKuberelay(up, dir, { ...kr.ref!, nodeArgs, wrap: wrap('kuberelay-ref') }));
  }
  const peers = {
    portkey: {
      label: `Portkey gateway ${PORTKEY_VERSION}`,
      install: installPortkey,
      start: (u: Upstream, i: Installed) => startPortkey(u, i, wrap('portkey')),
    },
    litellm: {
      label: `LiteLLM proxy ${LITELLM_VERSION} (1 worker)`,
      install: installLiteLLM,
      start: (u: Upstream, i: Installed) => startLiteLLM(u, i, tmp, wrap('litellm')),
    },
  };
  for (const name of params.peers as (keyof typeof peers)[]) {
    const p = peers[name];
    const g = gateway(name, p.label);
    if (params.install) log(`${p.label}: installing into the cache (once) or found there`);
    const inst = await p.install(params.install);
    if (!inst.ok) {
      out.push(g);
      g.result.status = 'not installed';
      g.result.reason = inst.reason.slice(0, 1000);
      log(`${p.label}: not installed: ${g.result.reason}`);
      continue;
    }
    await start(g, () => p.start(up, inst));
  }
  return out;
}

/** kuberelay's CLI at commit `ref`: its sources exported, built like the working tree's. */
function buildRef(ref: string, tmp: string, compiled: boolean): string {
  const root = exportRef(ref, path.join(tmp, 'ref-src'));
  return compiled ? compileKuberelay(path.join(tmp, 'ref-build'), root) : path.join(root, 'cli', 'index.ts');
}

function addErrors(g: Gateway, e: Errors) {
  g.result.errors += e.count;
  for (const s of e.samples) if (g.result.errorSamples.length < 5) g.result.errorSamples.push(s);
}

async function measureSerial(live: Gateway[], params: PeerParams, up: Upstream) {
  const targets = live.map((g) => g.target!);
  const direct = targets[0]!;
  const pick = (samples: Map<Target, Sample[]>, t: Target, f: (s: Sample) => number | undefined) =>
    samples
      .get(t)!
      .map((s) => f(s) ?? Number.NaN)
      .filter((x) => !Number.isNaN(x));
  const part = (samples: Map<Target, Sample[]>, t: Target, f: (s: Sample) => number | undefined) => {
    const d = pick(samples, direct, f);
    const x = pick(samples, t, f);
    return { latency: stats(x), added: added(d, x, t !== direct) };
  };
  const chat: RequestSpec = { path: '/v1/chat/completions', body: chatBody(32, false), stream: false };
  log(`chat, concurrency 1: ${params.rounds} rounds over ${targets.length} targets`);
  const c = await interleave(targets, chat, params.warmup, params.rounds);
  for (const g of live) {
    addErrors(g, c.errors.get(g.target!)!);
    g.result.chat = part(c.samples, g.target!, (s) => s.totalMs);
  }
  log(`streaming chat, concurrency 1: ${params.streamRounds} rounds, ${params.streamTokens} chunks`);
  const stream: RequestSpec = {
    path: '/v1/chat/completions',
    body: chatBody(params.streamTokens, true),
    stream: true,
    tokens: params.streamTokens,
  };
  const split: Record<string, number> = params.streamEnd === 'split' ? { endAfterDoneMs: 1 } : {};
  await setMockFaults(up.url, { chunkDelayMs: params.chunkDelayMs, ...split });
  const st = await interleave(targets, stream, params.streamWarmup, params.streamRounds);
  await setMockFaults(up.url, null);
  for (const g of live) {
    addErrors(g, st.errors.get(g.target!)!);
    g.result.stream = {
      firstToken: part(st.samples, g.target!, (s) => s.firstTokenMs),
      complete: part(st.samples, g.target!, (s) => s.totalMs),
    };
  }
}

async function measureLoad(live: Gateway[], params: PeerParams) {
  const chat: RequestSpec = { path: '/v1/chat/completions', body: chatBody(32, false), stream: false };
  const c = params.concurrency;
  log(`load: ${c} workers per target, ${params.durationS} s each (+${params.loadWarmupS} s warm-up)`);
  for (const g of live) await drive(g.target!, chat, c, params.loadWarmupS, newAcc());
  const acc = new Map(live.map((g) => [g, { ...newAcc(), cpuMs: 0, otherMs: 0 }]));
  const pidOf = (g: Gateway) => (g.result.name === 'direct' ? undefined : g.running!.child.pid);
  const allPids = live.map((g) => g.running!.child.pid);
  // The load of each target in segments, the targets rotated ABBA-style between them (as the
  // concurrency-1 rounds are), so that the machine's drift during the run hits every target alike.
  const segments = Array.from({ length: params.loadSegments }, (_, i) => roundOrder(live, i)).flat();
  for (const g of segments) {
    const a = acc.get(g)!;
    const pid = pidOf(g);
    const sample = () => {
      if (pid === undefined) return;
      g.peakBytes = Math.max(g.peakBytes, readProcTree(pid)?.rssBytes ?? 0);
    };
    const cpuOf = () => allPids.reduce((n, p) => n + (readProcTree(p)?.cpuMs ?? 0), 0);
    const own0 = pid === undefined ? 0 : (readProcTree(pid)?.cpuMs ?? 0);
    const all0 = cpuOf() + selfCpu();
    const busy0 = machineBusyMs();
    const timer = setInterval(sample, 100);
    try {
      a.seconds += await drive(g.target!, chat, c, params.durationS / params.loadSegments, a);
    } finally {
      clearInterval(timer);
      sample();
    }
    a.cpuMs += pid === undefined ? 0 : (readProcTree(pid)?.cpuMs ?? 0) - own0;
    a.otherMs += Math.max(0, machineBusyMs() - busy0 - (cpuOf() + selfCpu() - all0));
  }
  for (const g of live) {
    const a = acc.get(g)!;
    addErrors(g, a.errors);
    g.result.load = {
      concurrency: c,
      requests: a.latencies.length,
      seconds: a.seconds,
      rps: a.latencies.length / a.seconds,
      latency: stats(a.latencies),
      cpuMsPerRequest: a.cpuMs / a.latencies.length,
      otherCores: a.otherMs / (a.seconds * 1000),
    };
  }
}

const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runPeers(process.argv.slice(2)).then(
    (r) => {
      process.stdout.write(renderPeers(r));
      const broken = r.gateways.some((g) => g.status === 'failed' && g.name === 'kuberelay');
      process.exitCode = r.ownErrors > 0 || broken ? 1 : 0;
    },
    (err: unknown) => {
      process.stderr.write(`bench:peers: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
