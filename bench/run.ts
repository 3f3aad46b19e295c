// Relay overhead benchmarks: the same requests sent to the mock upstream directly (the baseline) and
// through the relay, in the same run, interleaved so that drift (GC, CPU frequency, noisy neighbours)
// hits both paths alike. The mock upstream and the relay are separate child processes (their RSS and
// CPU are read from /proc per process); this process is the load generator (undici Pool, keep-alive).
//
//   npm run bench                      full run (about 2 minutes), markdown tables on stdout
//   npm run bench -- --quick           short smoke run
//   npm run bench -- --json out.json   also write the raw figures
//   npm run bench -- --help            every option
//
// A scenario is a relay config plus relay environment (see SCENARIOS); `--config FILE` runs any
// config template instead. Method and recorded figures: BENCHMARKS.md.

// The parts: run/args.ts (options), run/scenarios.ts (relay configs), run/measure.ts (the two paths'
// runs), run/report.ts (markdown); lib/ holds what bench/peers.ts shares (statistics, /proc, child
// processes, requests, the load driver, markdown formats).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { type Child, freePort, ROOT, startChild, stopChild, waitReady } from './lib/children.ts';
import { compileKuberelay } from './lib/compile.ts';
import { gitCommit, log } from './lib/meta.ts';
import { readProc } from './lib/proc.ts';
import {
  chatBody,
  EMBEDDING_MODEL,
  type RequestSpec,
  type Sample,
  setMockFaults,
  type Target,
} from './lib/requests.ts';
import { added, stats } from './lib/stats.ts';
import { parseParams } from './run/args.ts';
import { load, type Procs, serial, serialResult } from './run/measure.ts';
import { renderMarkdown, targets } from './run/report.ts';
import type { BenchResult, HeapFigures, MemoryFigures } from './run/result.ts';

export { renderMarkdown };

const CLI = path.join(ROOT, 'cli', 'index.ts');
const MOCK_API_KEY = 'bench-upstream-key';

// ---- the run --------------------------------------------------------------------------------------

async function relayHeap(relayURL: string): Promise<HeapFigures | undefined> {
  try {
    const text = await (await fetch(`${relayURL}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? Number.NaN);
    return {
      heapUsedBytes: metric('kuberelay_nodejs_heap_size_used_bytes'),
      heapTotalBytes: metric('kuberelay_nodejs_heap_size_total_bytes'),
      externalBytes: metric('kuberelay_nodejs_external_memory_bytes'),
    };
  } catch {
    return undefined;
  }
}

export async function runBench(argv: string[]): Promise<BenchResult> {
  const { params, scenario, jsonFile, clientKey } = parseParams(argv);
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 24)
    throw new Error(`Node ${process.versions.node}: the bench needs Node 24 (run it with npm run bench)`);
  const startedAt = new Date();
  const t0 = performance.now();
  const loadavgStart = os.loadavg();

  const tmp = mkdtempSync(path.join(os.tmpdir(), 'kuberelay-bench-'));
  const [mockPort, relayPort] = [await freePort(), await freePort()];
  const mockURL = `http://127.0.0.1:${mockPort}`;
  const relayURL = `http://127.0.0.1:${relayPort}`;
  const configFile = path.join(tmp, 'relay.yaml');
  writeFileSync(configFile, scenario.config({ mockBaseURL: `${mockURL}/v1`, mockApiKey: MOCK_API_KEY }));

  let cli = CLI;
  if (params.compiled) cli = compileKuberelay(tmp);
  const children: Child[] = [];
  const pools: Pool[] = [];
  const onSignal = () => {
    for (const c of children) c.proc.kill('SIGKILL');
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const mock = startChild(
      'mock upstream',
      [
        cli,
        'mock-upstream',
        '--port',
        String(mockPort),
        '--host',
        '127.0.0.1',
        '--api-key',
        MOCK_API_KEY,
        '--name',
        'bench',
      ],
      {},
      params.pin ? '1' : undefined,
    );
    children.push(mock);
    const relayNodeArgs = [...params.relayNodeArgs];
    if (params.relayCpuProf) {
      relayNodeArgs.push('--cpu-prof', `--cpu-prof-dir=${path.resolve(params.relayCpuProf)}`);
    }
    const relayProc = startChild(
      'relay',
      [
        ...relayNodeArgs,
        params.relayCli ?? cli,
        'relay',
        '--config',
        configFile,
        '--port',
        String(relayPort),
        '--host',
        '127.0.0.1',
      ],
      { LOG_LEVEL: 'warn', ...scenario.env },
      params.pin ? '0' : undefined,
    );
    children.push(relayProc);
    await waitReady(mock, `${mockURL}/_mock/health`);
    await waitReady(relayProc, `${relayURL}/readyz`);
    const procs: Procs = { relay: relayProc, mock };
    log(
      `scenario ${scenario.name}: mock pid ${mock.pid} at ${mockURL}, relay pid ${relayProc.pid} at ${relayURL}`,
    );

    const maxC = Math.max(1, ...params.concurrency);
    const poolOpts = {
      connections: maxC,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      keepAliveMaxTimeout: 600_000,
    };
    const base = { 'content-type': 'application/json' };
    const direct: Target = {
      name: 'direct',
      pool: new Pool(mockURL, poolOpts),
      headers: { ...base, authorization: `Bearer ${MOCK_API_KEY}` },
    };
    const relay: Target = {
      name: 'relay',
      pool: new Pool(relayURL, poolOpts),
      headers: { ...base, authorization: `Bearer ${clientKey}` },
    };
    pools.push(direct.pool, relay.pool);

    const mem: MemoryFigures = {
      relay: {
        idleBytes: 0,
        afterSerialBytes: 0,
        peakSampledBytes: 0,
        hwmBytes: 0,
        endBytes: 0,
        endFileBackedBytes: 0,
      },
      mock: { idleBytes: 0, peakSampledBytes: 0, hwmBytes: 0, endFileBackedBytes: 0 },
      loaderPeakBytes: 0,
      relayHeapIdle: undefined,
      relayHeapEnd: undefined,
    };
    const sampleMem = () => {
      const r = readProc(relayProc.pid);
      const m = readProc(mock.pid);
      if (r) mem.relay.peakSampledBytes = Math.max(mem.relay.peakSampledBytes, r.rssBytes);
      if (m) mem.mock.peakSampledBytes = Math.max(mem.mock.peakSampledBytes, m.rssBytes);
      mem.loaderPeakBytes = Math.max(mem.loaderPeakBytes, process.memoryUsage().rss);
      return { r, m };
    };
    const idle = sampleMem();
    mem.relay.idleBytes = idle.r?.rssBytes ?? Number.NaN;
    mem.mock.idleBytes = idle.m?.rssBytes ?? Number.NaN;
    mem.relayHeapIdle = await relayHeap(relayURL);

    const chatSpec: RequestSpec = {
      path: '/v1/chat/completions',
      body: chatBody(params.completionTokens, false),
      stream: false,
    };
    const result: BenchResult = {
      version: 1,
      startedAt: startedAt.toISOString(),
      meta: {
        node: process.version,
        cpus: os.availableParallelism(),
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        kernel: `${os.type()} ${os.release()}`,
        memTotalBytes: os.totalmem(),
        commit: gitCommit(),
        loadavgStart,
        loadavgEnd: [],
        pinned: params.pin,
      },
      scenario: { name: scenario.name, description: scenario.description, env: scenario.env },
      params: { ...params, only: [...params.only] },
      load: [],
      memory: mem,
      targets: [],
      totalErrors: 0,
      durationS: 0,
    };

    if (params.only.has('chat')) {
      log(`chat, concurrency 1: ${params.chatRequests} requests per path (+${params.chatWarmup} warm-up)`);
      const run = await serial(procs, direct, relay, chatSpec, params.chatWarmup, params.chatRequests);
      result.chat = serialResult(params.chatRequests, run);
    }
    if (params.only.has('embeddings')) {
      log(`embeddings, concurrency 1: ${params.embeddingsRequests} requests per path`);
      const spec: RequestSpec = {
        path: '/v1/embeddings',
        body: JSON.stringify({
          model: EMBEDDING_MODEL,
          input: 'The quick brown fox jumps over the lazy dog near the riverbank at dawn.',
          dimensions: params.embeddingDimensions,
        }),
        stream: false,
      };
      const run = await serial(
        procs,
        direct,
        relay,
        spec,
        params.embeddingsWarmup,
        params.embeddingsRequests,
      );
      result.embeddings = serialResult(params.embeddingsRequests, run);
    }
    if (params.only.has('stream')) {
      log(
        `streaming chat, concurrency 1: ${params.streamRequests} streams per path, ${params.streamTokens} chunks, ` +
          `${params.chunkDelayMs} ms apart`,
      );
      const spec: RequestSpec = {
        path: '/v1/chat/completions',
        body: chatBody(params.streamTokens, true),
        stream: true,
        tokens: params.streamTokens,
      };
      // An instance fault: the relay forwards no x-mock-* header (headers cross by allow-list).
      await setMockFaults(mockURL, { chunkDelayMs: params.chunkDelayMs });
      const run = await serial(procs, direct, relay, spec, params.streamWarmup, params.streamRequests);
      await setMockFaults(mockURL, null);
      const part = (pick: (s: Sample) => number) => {
        const d = run.d.map(pick);
        const r = run.r.map(pick);
        return { direct: stats(d), relay: stats(r), added: added(d, r, true) };
      };
      result.stream = {
        ...serialResult(params.streamRequests, run),
        tokens: params.streamTokens,
        chunkDelayMs: params.chunkDelayMs,
        ttfb: part((s) => s.firstByteMs ?? Number.NaN),
        ttft: part((s) => s.firstTokenMs ?? Number.NaN),
      };
    }
    mem.relay.afterSerialBytes = readProc(relayProc.pid)?.rssBytes ?? Number.NaN;

    if (params.only.has('load')) {
      for (const c of params.concurrency) {
        log(
          `load: concurrency ${c}, ${params.durationS} s per path (+${params.loadWarmupS} s warm-up per path)`,
        );
        let relayPeak = 0;
        let mockPeak = 0;
        const r = await load(procs, direct, relay, chatSpec, c, params, () => {
          const s = sampleMem();
          relayPeak = Math.max(relayPeak, s.r?.rssBytes ?? 0);
          mockPeak = Math.max(mockPeak, s.m?.rssBytes ?? 0);
        });
        r.relayPeakRssBytes = relayPeak;
        r.mockPeakRssBytes = mockPeak;
        result.load.push(r);
      }
    }
    const end = sampleMem();
    mem.relay.endBytes = end.r?.rssBytes ?? Number.NaN;
    mem.relay.hwmBytes = end.r?.hwmBytes ?? Number.NaN;
    mem.mock.hwmBytes = end.m?.hwmBytes ?? Number.NaN;
    mem.relay.endFileBackedBytes = end.r?.fileBytes ?? Number.NaN;
    mem.mock.endFileBackedBytes = end.m?.fileBytes ?? Number.NaN;
    mem.relayHeapEnd = await relayHeap(relayURL);

    result.totalErrors =
      (result.chat?.errors ?? 0) +
      (result.embeddings?.errors ?? 0) +
      (result.stream?.errors ?? 0) +
      result.load.reduce((n, l) => n + l.direct.errors + l.relay.errors, 0);
    result.targets = targets(result);
    result.meta.loadavgEnd = os.loadavg();
    result.durationS = (performance.now() - t0) / 1000;

    if (relayProc.proc.exitCode !== null)
      throw new Error(`the relay exited during the run:\n${relayProc.output()}`);
    if (jsonFile) writeFileSync(jsonFile, `${JSON.stringify(result, null, 2)}\n`);
    return result;
  } finally {
    await Promise.allSettled(pools.map((p) => p.close()));
    // SIGTERM: the relay drains and exits, which is also when --cpu-prof writes its profile.
    await Promise.allSettled(children.reverse().map((c) => stopChild(c)));
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runBench(process.argv.slice(2)).then(
    (r) => {
      process.stdout.write(renderMarkdown(r));
      process.exitCode = r.totalErrors > 0 ? 1 : 0;
    },
    (err: unknown) => {
      process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
