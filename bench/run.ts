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

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'cli', 'index.ts');
const MOCK_API_KEY = 'bench-upstream-key';
const CHAT_MODEL = 'gpt-4o-mini';
const EMBEDDING_MODEL = 'text-embedding-3-small';

// ---- scenarios ------------------------------------------------------------------------------------

interface ScenarioContext {
  /** e.g. http://127.0.0.1:PORT/v1 */
  mockBaseURL: string;
  mockApiKey: string;
}

interface Scenario {
  name: string;
  description: string;
  /** The relay's config file (multi-document YAML). */
  config(ctx: ScenarioContext): string;
  /** Extra relay environment (on top of LOG_LEVEL=warn). */
  env: Record<string, string>;
}

const passthroughConfig = (ctx: ScenarioContext) => `apiVersion: v1
kind: Secret
metadata: { name: bench-upstream }
stringData: { apiKey: ${ctx.mockApiKey} }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: bench }
spec:
  provider: openai-compatible
  baseURL: ${ctx.mockBaseURL}
  apiKeySecretRef: { name: bench-upstream }
  models:
    - name: ${CHAT_MODEL}
      pricing: { inputPer1M: "0.15", outputPer1M: "0.60" }
    - name: ${EMBEDDING_MODEL}
      pricing: { inputPer1M: "0.02" }
`;

const SCENARIOS: Record<string, Scenario> = {
  passthrough: {
    name: 'passthrough',
    description:
      'one channel, no RateLimitPolicy, no channel concurrency limit, client auth off (KUBERELAY_AUTH=none), metrics on',
    config: passthroughConfig,
    env: { KUBERELAY_AUTH: 'none' },
  },
  limits: {
    name: 'limits',
    description:
      'as passthrough, plus a channel concurrency limit (1000) and RateLimitPolicies that never trigger ' +
      '(per client IP: requests and tokens per minute; global: concurrent), so the limiter runs on every request',
    config: (ctx) =>
      passthroughConfig(ctx).replace(
        '  models:\n',
        '  limits: { maxConcurrent: 1000, maxQueue: 1000 }\n  models:\n',
      ) +
      `---
apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: bench-per-ip }
spec:
  limitBy: clientIP
  limits:
    - { requests: 1000000000, per: 1m }
    - { tokens: 1000000000000, per: 1m }
---
apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: bench-global }
spec:
  limitBy: global
  limits:
    - { concurrent: 100000 }
`,
    env: { KUBERELAY_AUTH: 'none' },
  },
  'channel-limit': {
    name: 'channel-limit',
    description: 'as passthrough, plus limits.maxConcurrent 1000 on the channel (the concurrency gate runs)',
    config: (ctx) =>
      passthroughConfig(ctx).replace(
        '  models:\n',
        '  limits: { maxConcurrent: 1000, maxQueue: 1000 }\n  models:\n',
      ),
    env: { KUBERELAY_AUTH: 'none' },
  },
};

/** `--config FILE`: a template where {{MOCK_BASE_URL}} and {{MOCK_API_KEY}} are replaced. */
function templateScenario(file: string, env: Record<string, string>): Scenario {
  const text = readFileSync(file, 'utf8');
  return {
    name: `config:${path.basename(file)}`,
    description: `config template ${file}`,
    config: (ctx) =>
      text.replaceAll('{{MOCK_BASE_URL}}', ctx.mockBaseURL).replaceAll('{{MOCK_API_KEY}}', ctx.mockApiKey),
    env,
  };
}

// ---- options --------------------------------------------------------------------------------------

interface Params {
  quick: boolean;
  scenario: string;
  /** Concurrency-1 chat: warm-up requests per path, measured requests per path. */
  chatWarmup: number;
  chatRequests: number;
  embeddingsWarmup: number;
  embeddingsRequests: number;
  embeddingDimensions: number;
  streamWarmup: number;
  streamRequests: number;
  streamTokens: number;
  chunkDelayMs: number;
  /** Load levels (concurrency) and seconds measured per path per level. */
  concurrency: number[];
  durationS: number;
  loadWarmupS: number;
  completionTokens: number;
  only: Set<string>;
  relayCpuProf: string | undefined;
  /** Extra node flags for the relay process, and its entry point (default cli/index.ts). */
  relayNodeArgs: string[];
  relayCli: string | undefined;
  /** Run the mock and the relay from a tsc build (as deployed) instead of the .ts sources. */
  compiled: boolean;
  pin: boolean;
}

const HELP = `usage: node bench/run.ts [options]        (npm run bench -- [options])

  --quick                     short runs (smoke check; figures are not meaningful)
  --json FILE                 write the raw result object to FILE
  --scenario NAME             ${Object.keys(SCENARIOS).join(' | ')} (default passthrough)
  --config FILE               relay config template instead of a scenario ({{MOCK_BASE_URL}}, {{MOCK_API_KEY}})
  --relay-env K=V             extra relay environment (repeatable)
  --client-key KEY            bearer key sent to the relay (when the scenario turns client auth on)
  --only LIST                 subset of chat,embeddings,stream,load (default all)
  --chat-requests N           concurrency-1 chat requests per path (default 5000; quick 200)
  --embeddings-requests N     concurrency-1 embeddings requests per path (default 2000; quick 50)
  --embedding-dimensions N    embedding size in the responses (default 1536)
  --stream-requests N         concurrency-1 streams per path (default 500; quick 30)
  --stream-tokens N           content chunks per stream (default 16)
  --chunk-delay-ms MS         delay between streamed chunks at the mock (default 1)
  --concurrency LIST          load levels, e.g. 32,64 (default 32,64; quick 8)
  --duration S                seconds measured per path per load level (default 10; quick 1)
  --load-warmup S             warm-up seconds per path per load level (default 1; quick 0.25)
  --relay-cpu-prof DIR        run the relay with --cpu-prof, profile written to DIR at exit
  --relay-node-args "ARGS"    extra node flags for the relay, e.g. "--max-semi-space-size=4"
  --compiled                  build with tsc into a temp dir and run mock and relay from the .js (as deployed)
  --relay-cli FILE            relay entry point (default cli/index.ts, or the build's with --compiled)
  --pin                       taskset: relay on CPU 0, mock on CPU 1 (run this process under taskset -c 1)
`;

function parseParams(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean' },
      quick: { type: 'boolean' },
      json: { type: 'string' },
      scenario: { type: 'string' },
      config: { type: 'string' },
      'relay-env': { type: 'string', multiple: true },
      'client-key': { type: 'string' },
      only: { type: 'string' },
      'chat-requests': { type: 'string' },
      'embeddings-requests': { type: 'string' },
      'embedding-dimensions': { type: 'string' },
      'stream-requests': { type: 'string' },
      'stream-tokens': { type: 'string' },
      'chunk-delay-ms': { type: 'string' },
      concurrency: { type: 'string' },
      duration: { type: 'string' },
      'load-warmup': { type: 'string' },
      'relay-cpu-prof': { type: 'string' },
      'relay-node-args': { type: 'string' },
      'relay-cli': { type: 'string' },
      compiled: { type: 'boolean' },
      pin: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const quick = values.quick === true;
  const num = (name: string, v: string | undefined, dflt: number, min = 0): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}`);
    return n;
  };
  const env: Record<string, string> = {};
  for (const kv of values['relay-env'] ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`--relay-env expects K=V, got ${kv}`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  let scenario: Scenario;
  if (values.config !== undefined) scenario = templateScenario(values.config, env);
  else {
    const s = SCENARIOS[values.scenario ?? 'passthrough'];
    if (!s)
      throw new Error(`unknown scenario ${values.scenario}; known: ${Object.keys(SCENARIOS).join(', ')}`);
    scenario = { ...s, env: { ...s.env, ...env } };
  }
  const concurrency = (values.concurrency ?? (quick ? '8' : '32,64')).split(',').map((c) => {
    const n = Number(c.trim());
    if (!Number.isInteger(n) || n < 1) throw new Error('--concurrency expects positive integers, e.g. 32,64');
    return n;
  });
  const only = new Set((values.only ?? 'chat,embeddings,stream,load').split(',').map((s) => s.trim()));
  for (const o of only) {
    if (!['chat', 'embeddings', 'stream', 'load'].includes(o)) throw new Error(`--only: unknown part ${o}`);
  }
  const chatRequests = num('chat-requests', values['chat-requests'], quick ? 200 : 5000, 1);
  const embeddingsRequests = num('embeddings-requests', values['embeddings-requests'], quick ? 50 : 2000, 1);
  const streamRequests = num('stream-requests', values['stream-requests'], quick ? 30 : 500, 1);
  const params: Params = {
    quick,
    scenario: scenario.name,
    chatWarmup: quick ? 50 : 500,
    chatRequests,
    embeddingsWarmup: quick ? 10 : 200,
    embeddingsRequests,
    embeddingDimensions: num('embedding-dimensions', values['embedding-dimensions'], 1536, 1),
    streamWarmup: quick ? 5 : 50,
    streamRequests,
    streamTokens: num('stream-tokens', values['stream-tokens'], 16, 1),
    chunkDelayMs: num('chunk-delay-ms', values['chunk-delay-ms'], 1),
    concurrency,
    durationS: num('duration', values.duration, quick ? 1 : 10, 0.1),
    loadWarmupS: num('load-warmup', values['load-warmup'], quick ? 0.25 : 1),
    completionTokens: 32,
    only,
    relayCpuProf: values['relay-cpu-prof'],
    relayNodeArgs: (values['relay-node-args'] ?? '').split(/\s+/).filter(Boolean),
    relayCli: values['relay-cli'] !== undefined ? path.resolve(values['relay-cli']) : undefined,
    compiled: values.compiled === true,
    pin: values.pin === true,
  };
  return { params, scenario, jsonFile: values.json, clientKey: values['client-key'] ?? 'bench-client-key' };
}

// ---- statistics -----------------------------------------------------------------------------------

interface LatencyStats {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

const sorted = (xs: readonly number[]): Float64Array => Float64Array.from(xs).sort();

/** Nearest-rank percentile of an ascending array (q in 0..1). */
function quantile(s: Float64Array, q: number): number {
  if (s.length === 0) return Number.NaN;
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i]!;
}

function stats(xs: readonly number[]): LatencyStats {
  const s = sorted(xs);
  let sum = 0;
  for (const x of s) sum += x;
  return {
    count: s.length,
    mean: s.length ? sum / s.length : Number.NaN,
    p50: quantile(s, 0.5),
    p90: quantile(s, 0.9),
    p99: quantile(s, 0.99),
    max: s.length ? s[s.length - 1]! : Number.NaN,
  };
}

/** mulberry32: a seeded PRNG so the bootstrap is repeatable. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface AddedLatency {
  /** quantile(relay) - quantile(direct), in ms. */
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  /** 95% bootstrap intervals of the p50 and p99 differences. */
  p50ci: [number, number];
  p99ci: [number, number];
  /** Median of the per-pair differences (request i through the relay minus its direct neighbour). */
  pairedMedian: number;
}

/**
 * Added latency as the difference of the two latency distributions' percentiles. The requests are
 * not the same requests, so "p99 of the differences" is not defined; p99(relay) - p99(direct) is what
 * a client sees change. The bootstrap (resampling each side, 400 times) gives the interval.
 */
function added(direct: readonly number[], relay: readonly number[], pairs: boolean): AddedLatency {
  const d = stats(direct);
  const r = stats(relay);
  const rnd = prng(42);
  const resample = (xs: readonly number[]) => {
    const out = new Float64Array(xs.length);
    for (let i = 0; i < xs.length; i++) out[i] = xs[Math.floor(rnd() * xs.length)]!;
    return out.sort();
  };
  const d50: number[] = [];
  const d99: number[] = [];
  for (let i = 0; i < 400; i++) {
    const a = resample(direct);
    const b = resample(relay);
    d50.push(quantile(b, 0.5) - quantile(a, 0.5));
    d99.push(quantile(b, 0.99) - quantile(a, 0.99));
  }
  const s50 = sorted(d50);
  const s99 = sorted(d99);
  let pairedMedian = Number.NaN;
  if (pairs) {
    const n = Math.min(direct.length, relay.length);
    const diffs: number[] = [];
    for (let i = 0; i < n; i++) diffs.push(relay[i]! - direct[i]!);
    pairedMedian = quantile(sorted(diffs), 0.5);
  }
  return {
    p50: r.p50 - d.p50,
    p90: r.p90 - d.p90,
    p99: r.p99 - d.p99,
    mean: r.mean - d.mean,
    p50ci: [quantile(s50, 0.025), quantile(s50, 0.975)],
    p99ci: [quantile(s99, 0.025), quantile(s99, 0.975)],
    pairedMedian,
  };
}

// ---- processes ------------------------------------------------------------------------------------

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

interface ProcSample {
  rssBytes: number;
  /** VmHWM: the peak RSS since the process started. */
  hwmBytes: number;
  /** File-backed part of the RSS (mostly the node binary's pages, shared with other node processes). */
  fileBytes: number;
  /** user + system CPU time. */
  cpuMs: number;
}

function readProc(pid: number): ProcSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) =>
      Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuMs = ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
    return { rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM'), fileBytes: kb('RssFile'), cpuMs };
  } catch {
    return undefined;
  }
}

/** Busy CPU time of the whole machine (all processes), from /proc/stat. */
function machineBusyMs(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...
    const busy = v[0]! + v[1]! + v[2]! + (v[5] ?? 0) + (v[6] ?? 0) + (v[7] ?? 0);
    return (busy * 1000) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  output: () => string;
  exited: Promise<number | null>;
}

function startChild(name: string, args: string[], env: Record<string, string>, cpu?: string): Child {
  const command = cpu !== undefined ? 'taskset' : process.execPath;
  const argv = cpu !== undefined ? ['-c', cpu, process.execPath, ...args] : args;
  const proc = spawn(command, argv, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString('utf8')).slice(-8000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  if (proc.pid === undefined) throw new Error(`could not start ${name}`);
  return { name, proc, pid: proc.pid, output: () => out, exited };
}

async function stopChild(c: Child, timeoutMs = 10_000): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  c.proc.kill('SIGTERM');
  const t = setTimeout(() => c.proc.kill('SIGKILL'), timeoutMs);
  await c.exited;
  clearTimeout(t);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(c: Child, url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    if (c.proc.exitCode !== null) throw new Error(`${c.name} exited (${c.proc.exitCode}):\n${c.output()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      last = `${res.status} ${await res.text()}`;
      if (res.ok) return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${c.name} not ready at ${url}: ${last}\n${c.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---- requests -------------------------------------------------------------------------------------

interface Target {
  name: 'direct' | 'relay';
  pool: Pool;
  headers: Record<string, string>;
}

interface Sample {
  ok: boolean;
  error?: string;
  /** Until the whole response was read. */
  totalMs: number;
  /** Until the response headers. */
  headersMs: number;
  /** Streams: until the first body bytes, and until the first chunk with generated content. */
  firstByteMs?: number;
  firstTokenMs?: number;
  overheadMs?: number;
}

interface RequestSpec {
  path: string;
  body: string;
  stream: boolean;
  /** Streams: the number of content chunks expected. */
  tokens?: number;
  extraHeaders?: Record<string, string>;
}

const CONTENT_DELTA = /"delta":\{"content":"/g;
const FIRST_TOKEN = /"content":"[^"]/;

async function send(t: Target, spec: RequestSpec): Promise<Sample> {
  const t0 = performance.now();
  try {
    const res = await t.pool.request({
      path: spec.path,
      method: 'POST',
      headers: spec.extraHeaders ? { ...t.headers, ...spec.extraHeaders } : t.headers,
      body: spec.body,
    });
    const headersMs = performance.now() - t0;
    const oh = res.headers['x-kuberelay-overhead-ms'];
    const overheadMs = typeof oh === 'string' ? Number(oh) : undefined;
    if (!spec.stream) {
      const text = await res.body.text();
      const totalMs = performance.now() - t0;
      if (res.statusCode !== 200)
        return { ok: false, error: `${res.statusCode} ${text.slice(0, 200)}`, totalMs, headersMs };
      return { ok: true, totalMs, headersMs, overheadMs };
    }
    let text = '';
    let firstByteMs: number | undefined;
    let firstTokenMs: number | undefined;
    for await (const chunk of res.body) {
      const now = performance.now() - t0;
      firstByteMs ??= now;
      text += (chunk as Buffer).toString('utf8');
      if (firstTokenMs === undefined && FIRST_TOKEN.test(text)) firstTokenMs = now;
    }
    const totalMs = performance.now() - t0;
    if (res.statusCode !== 200)
      return { ok: false, error: `${res.statusCode} ${text.slice(0, 200)}`, totalMs, headersMs };
    const contentChunks = text.match(CONTENT_DELTA)?.length ?? 0;
    if (!text.includes('data: [DONE]') || contentChunks !== spec.tokens) {
      return { ok: false, error: `incomplete stream (${contentChunks} content chunks)`, totalMs, headersMs };
    }
    return { ok: true, totalMs, headersMs, firstByteMs, firstTokenMs, overheadMs };
  } catch (err) {
    return {
      ok: false,
      error: (err as Error).message,
      totalMs: performance.now() - t0,
      headersMs: Number.NaN,
    };
  }
}

const chatBody = (completionTokens: number, stream: boolean) =>
  JSON.stringify({
    model: CHAT_MODEL,
    messages: [
      {
        role: 'system',
        content:
          'You are a helpful assistant for a customer support team. Answer briefly and politely, cite the ' +
          'relevant policy section when there is one, and never invent order numbers or tracking codes.',
      },
      { role: 'user', content: 'Hello! My order has not arrived yet. What can I do about it?' },
      { role: 'assistant', content: 'I am sorry to hear that. Could you share the order number, please?' },
      { role: 'user', content: 'It is A-1042, placed last Tuesday. Thank you for your help.' },
    ],
    max_tokens: completionTokens,
    temperature: 0.2,
    ...(stream ? { stream: true } : {}),
  });

// ---- scenarios: concurrency 1 ---------------------------------------------------------------------

interface SerialResult {
  requests: number;
  errors: number;
  errorSamples: string[];
  direct: LatencyStats;
  relay: LatencyStats;
  added: AddedLatency;
  /** The relay's own estimate (x-kuberelay-overhead-ms). */
  relayReportedOverhead: LatencyStats;
  /** CPU used during the measured requests, in cores; `other` is everything else on the machine (noise). */
  cpu: CpuShare;
}

interface StreamResult extends SerialResult {
  tokens: number;
  chunkDelayMs: number;
  ttfb: { direct: LatencyStats; relay: LatencyStats; added: AddedLatency };
  ttft: { direct: LatencyStats; relay: LatencyStats; added: AddedLatency };
}

class Errors {
  count = 0;
  samples = new Set<string>();
  add(s: Sample) {
    if (s.ok) return;
    this.count++;
    if (this.samples.size < 5 && s.error) this.samples.add(s.error);
  }
}

/**
 * Concurrency 1, the two paths interleaved request by request in ABBA order (direct, relay, relay,
 * direct, ...) so that slow drift and "who went first" both cancel.
 */
async function serial(
  procs: Procs,
  direct: Target,
  relay: Target,
  spec: RequestSpec,
  warmup: number,
  n: number,
): Promise<SerialRun> {
  for (let i = 0; i < warmup; i++) {
    await send(direct, spec);
    await send(relay, spec);
  }
  const d: Sample[] = [];
  const r: Sample[] = [];
  const errors = new Errors();
  const m0 = meter(procs);
  for (let i = 0; i < n; i++) {
    const order = i % 2 === 0 ? [direct, relay] : [relay, direct];
    for (const t of order) {
      const s = await send(t, spec);
      errors.add(s);
      if (s.ok) (t === direct ? d : r).push(s);
    }
  }
  return { d, r, errors, cpu: cpuBetween(m0, meter(procs)) };
}

interface SerialRun {
  d: Sample[];
  r: Sample[];
  errors: Errors;
  cpu: CpuShare;
}

function serialResult(
  n: number,
  run: SerialRun,
  pick: (s: Sample) => number = (s) => s.totalMs,
): SerialResult {
  const dl = run.d.map(pick);
  const rl = run.r.map(pick);
  return {
    requests: n,
    errors: run.errors.count,
    errorSamples: [...run.errors.samples],
    direct: stats(dl),
    relay: stats(rl),
    added: added(dl, rl, true),
    relayReportedOverhead: stats(
      run.r.map((s) => s.overheadMs ?? Number.NaN).filter((x) => !Number.isNaN(x)),
    ),
    cpu: run.cpu,
  };
}

// ---- scenario: load -------------------------------------------------------------------------------

interface CpuShare {
  /** CPU used during the measured segments, in cores (1.0 = one core busy all the time). */
  relay: number;
  mock: number;
  loader: number;
  /** Everything else on the machine (other users, the kernel outside these processes). */
  other: number;
}

interface LoadSide {
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  latency: LatencyStats;
  cpu: CpuShare;
}

interface LoadResult {
  concurrency: number;
  direct: LoadSide;
  relay: LoadSide & {
    reportedOverhead: LatencyStats;
    /**
     * Relay CPU (all its threads) per relayed request, and the req/s at which one relay process would
     * use one full core at that cost (a Node process serves requests on one thread).
     */
    relayCpuMsPerRequest: number;
    cpuBoundRpsPerCore: number;
  };
  added: { p50: number; p99: number };
  errorSamples: string[];
  relayPeakRssBytes: number;
  mockPeakRssBytes: number;
}

interface Procs {
  relay: Child;
  mock: Child;
}

interface Meter {
  relayCpu: number;
  mockCpu: number;
  selfCpu: number;
  busy: number;
  at: number;
}

function meter(p: Procs): Meter {
  return {
    relayCpu: readProc(p.relay.pid)?.cpuMs ?? Number.NaN,
    mockCpu: readProc(p.mock.pid)?.cpuMs ?? Number.NaN,
    selfCpu: selfCpuMs(),
    busy: machineBusyMs(),
    at: performance.now(),
  };
}

interface LoadAcc {
  /** Latencies of the successful requests, and the relay's x-kuberelay-overhead-ms of each. */
  latencies: number[];
  overheads: number[];
  errors: Errors;
  seconds: number;
  cpu: CpuShare;
}

const newAcc = (): LoadAcc => ({
  latencies: [],
  overheads: [],
  errors: new Errors(),
  seconds: 0,
  cpu: zeroCpu(),
});

/** `concurrency` workers sending back to back until the deadline; returns the seconds it took. */
async function drive(t: Target, spec: RequestSpec, concurrency: number, seconds: number, acc: LoadAcc) {
  const deadline = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const s = await send(t, spec);
      acc.errors.add(s);
      if (!s.ok) continue;
      acc.latencies.push(s.totalMs);
      if (s.overheadMs !== undefined) acc.overheads.push(s.overheadMs);
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return (performance.now() - start) / 1000;
}

async function load(
  procs: Procs,
  direct: Target,
  relay: Target,
  spec: RequestSpec,
  concurrency: number,
  params: Params,
  onSample: () => void,
): Promise<LoadResult> {
  await drive(direct, spec, concurrency, params.loadWarmupS, newAcc());
  await drive(relay, spec, concurrency, params.loadWarmupS, newAcc());
  const half = params.durationS / 2;
  const acc = { direct: newAcc(), relay: newAcc() };
  const sampler = setInterval(onSample, 100);
  try {
    // ABBA segments: direct, relay, relay, direct.
    for (const t of [direct, relay, relay, direct]) {
      const a = acc[t.name];
      const m0 = meter(procs);
      a.seconds += await drive(t, spec, concurrency, half, a);
      const m1 = meter(procs);
      const ours = m1.relayCpu - m0.relayCpu + (m1.mockCpu - m0.mockCpu) + (m1.selfCpu - m0.selfCpu);
      a.cpu.relay += m1.relayCpu - m0.relayCpu;
      a.cpu.mock += m1.mockCpu - m0.mockCpu;
      a.cpu.loader += m1.selfCpu - m0.selfCpu;
      a.cpu.other += Math.max(0, m1.busy - m0.busy - ours);
    }
  } finally {
    clearInterval(sampler);
    onSample();
  }
  const side = (a: typeof acc.direct): LoadSide => {
    const ms = a.seconds * 1000;
    return {
      requests: a.latencies.length,
      errors: a.errors.count,
      seconds: a.seconds,
      rps: a.latencies.length / a.seconds,
      latency: stats(a.latencies),
      cpu: {
        relay: a.cpu.relay / ms,
        mock: a.cpu.mock / ms,
        loader: a.cpu.loader / ms,
        other: a.cpu.other / ms,
      },
    };
  };
  const d = side(acc.direct);
  const r = side(acc.relay);
  const relayCpuMsPerRequest = acc.relay.cpu.relay / r.requests || Number.NaN;
  return {
    concurrency,
    direct: d,
    relay: {
      ...r,
      reportedOverhead: stats(acc.relay.overheads),
      relayCpuMsPerRequest,
      cpuBoundRpsPerCore: 1000 / relayCpuMsPerRequest,
    },
    added: { p50: r.latency.p50 - d.latency.p50, p99: r.latency.p99 - d.latency.p99 },
    errorSamples: [...acc.direct.errors.samples, ...acc.relay.errors.samples],
    relayPeakRssBytes: 0,
    mockPeakRssBytes: 0,
  };
}

/** CPU used between two meter readings, in cores. */
function cpuBetween(m0: Meter, m1: Meter): CpuShare {
  const ms = m1.at - m0.at;
  const relay = m1.relayCpu - m0.relayCpu;
  const mock = m1.mockCpu - m0.mockCpu;
  const loader = m1.selfCpu - m0.selfCpu;
  const other = Math.max(0, m1.busy - m0.busy - relay - mock - loader);
  return { relay: relay / ms, mock: mock / ms, loader: loader / ms, other: other / ms };
}

function zeroCpu(): CpuShare {
  return { relay: 0, mock: 0, loader: 0, other: 0 };
}

// ---- the run --------------------------------------------------------------------------------------

/** V8 heap figures from the relay's /metrics (prom-client default metrics), in bytes. */
interface HeapFigures {
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
}

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

interface MemoryFigures {
  relay: {
    idleBytes: number;
    afterSerialBytes: number;
    peakSampledBytes: number;
    hwmBytes: number;
    endBytes: number;
    endFileBackedBytes: number;
  };
  mock: { idleBytes: number; peakSampledBytes: number; hwmBytes: number; endFileBackedBytes: number };
  loaderPeakBytes: number;
  /** Scraped at idle and at the end (not during measurements). */
  relayHeapIdle: HeapFigures | undefined;
  relayHeapEnd: HeapFigures | undefined;
}

export interface BenchResult {
  version: 1;
  startedAt: string;
  meta: {
    node: string;
    cpus: number;
    cpuModel: string;
    kernel: string;
    memTotalBytes: number;
    commit: string | undefined;
    loadavgStart: number[];
    loadavgEnd: number[];
    pinned: boolean;
  };
  scenario: { name: string; description: string; env: Record<string, string> };
  params: Omit<Params, 'only'> & { only: string[] };
  chat?: SerialResult;
  embeddings?: SerialResult;
  stream?: StreamResult;
  load: LoadResult[];
  memory: MemoryFigures;
  targets: {
    name: string;
    target: string;
    measured: string;
    met: boolean | null;
  }[];
  totalErrors: number;
  durationS: number;
}

function gitCommit(): string | undefined {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
    const head = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain').split('\n').filter(Boolean).length;
    return dirty > 0 ? `${head} + ${dirty} uncommitted changes` : head;
  } catch {
    return undefined;
  }
}

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

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
  if (params.compiled) {
    const dist = path.join(tmp, 'dist');
    log(`compiling with tsc into ${dist}`);
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    execFileSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.json'), '--outDir', dist], {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    writeFileSync(path.join(dist, 'package.json'), '{ "type": "module" }\n');
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(dist, 'node_modules'), 'dir');
    cli = path.join(dist, 'cli', 'index.js');
  }
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

// ---- targets and report ---------------------------------------------------------------------------

const MB = 1024 * 1024;

function targets(r: BenchResult): BenchResult['targets'] {
  const out: BenchResult['targets'] = [];
  if (r.chat) {
    out.push({
      name: 'added p50, concurrency 1',
      target: '<= 1 ms',
      measured: `${ms(r.chat.added.p50)} ms`,
      met: r.chat.added.p50 <= 1,
    });
    out.push({
      name: 'added p99, concurrency 1',
      target: '<= 3 ms',
      measured: `${ms(r.chat.added.p99)} ms`,
      met: r.chat.added.p99 <= 3,
    });
  }
  if (r.load.length > 0) {
    const best = r.load.reduce((a, b) => (b.relay.rps > a.relay.rps ? b : a));
    out.push({
      name: 'relay throughput (this machine, loader and mock sharing the 2 cores)',
      target: '>= 2,500 req/s',
      measured: `${fmt0(best.relay.rps)} req/s at concurrency ${best.concurrency}`,
      met: best.relay.rps >= 2500,
    });
    const proj = Math.min(...r.load.map((l) => l.relay.cpuBoundRpsPerCore));
    out.push({
      name: 'relay req/s per core of relay CPU (projection from CPU ms/request, lowest level)',
      target: '>= 2,500 req/s',
      measured: `${fmt0(proj)} req/s`,
      met: null,
    });
  }
  const peak = Math.max(r.memory.relay.hwmBytes || 0, r.memory.relay.peakSampledBytes);
  out.push({
    name: 'relay peak RSS',
    target: '<= 150 MB',
    measured: `${fmt1(peak / MB)} MB`,
    met: peak / MB <= 150,
  });
  return out;
}

const ms = (x: number) => (Number.isNaN(x) ? 'n/a' : x.toFixed(3));
const sms = (x: number) => (Number.isNaN(x) ? 'n/a' : `${x >= 0 ? '+' : ''}${x.toFixed(3)}`);
const fmt0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
const fmt1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
const fmt2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const ci = (c: [number, number]) => `[${sms(c[0])}, ${sms(c[1])}]`;

function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

export function renderMarkdown(r: BenchResult): string {
  const out: string[] = [];
  const m = r.meta;
  out.push(
    `## kuberelay relay benchmark — scenario \`${r.scenario.name}\`${r.params.quick ? ' (quick)' : ''}`,
  );
  out.push('');
  out.push(
    `${r.startedAt}, commit ${m.commit ?? '?'}, Node ${m.node}, ${m.cpus} CPUs (${m.cpuModel}), ${m.kernel}; ` +
      `load average ${m.loadavgStart.map(fmt2).join(' ')} at start, ${m.loadavgEnd.map(fmt2).join(' ')} at end` +
      `${m.pinned ? '; relay pinned to CPU 0, mock to CPU 1' : ''}. Run took ${fmt1(r.durationS)} s.`,
  );
  out.push('');
  const how = r.params.compiled
    ? 'compiled with tsc (as deployed)'
    : 'run from the .ts sources (type stripping)';
  const relayArgs =
    r.params.relayNodeArgs.length > 0 ? `; relay node flags: ${r.params.relayNodeArgs.join(' ')}` : '';
  const env = Object.entries(r.scenario.env)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  out.push(
    `Scenario: ${r.scenario.description}. Relay env: ${env || '(none)'}; mock and relay ${how}${relayArgs}.`,
  );
  out.push('');
  out.push(
    'Latencies in ms, measured by the client (this process). Added = percentile(relay) − percentile(direct).',
  );
  out.push('');
  const serialRows: string[][] = [];
  const serialRow = (
    name: string,
    s: { direct: LatencyStats; relay: LatencyStats; added: AddedLatency },
    cpu?: CpuShare,
  ) => {
    serialRows.push([
      name,
      `${ms(s.direct.p50)} / ${ms(s.direct.p90)} / ${ms(s.direct.p99)} / ${ms(s.direct.max)}`,
      `${ms(s.relay.p50)} / ${ms(s.relay.p90)} / ${ms(s.relay.p99)} / ${ms(s.relay.max)}`,
      `**${sms(s.added.p50)}** ${ci(s.added.p50ci)}`,
      `**${sms(s.added.p99)}** ${ci(s.added.p99ci)}`,
      sms(s.added.pairedMedian),
      cpu ? fmt2(cpu.other) : '',
    ]);
  };
  if (r.chat) serialRow(`chat, non-stream (n=${r.chat.direct.count}/path)`, r.chat, r.chat.cpu);
  if (r.embeddings)
    serialRow(
      `embeddings ${r.params.embeddingDimensions}-d (n=${r.embeddings.direct.count}/path)`,
      r.embeddings,
      r.embeddings.cpu,
    );
  if (r.stream) {
    serialRow(`stream: first byte (n=${r.stream.direct.count}/path)`, r.stream.ttfb, r.stream.cpu);
    serialRow(`stream: first token`, r.stream.ttft);
    serialRow(`stream: complete (${r.stream.tokens} chunks, ${r.stream.chunkDelayMs} ms apart)`, r.stream);
  }
  if (serialRows.length > 0) {
    out.push('### Concurrency 1 (direct and relay interleaved request by request)');
    out.push('');
    out.push(
      table(
        [
          'request',
          'direct p50 / p90 / p99 / max',
          'relay p50 / p90 / p99 / max',
          'added p50 [95% CI]',
          'added p99 [95% CI]',
          'paired median',
          'other CPU (cores)',
        ],
        serialRows,
      ),
    );
    out.push('');
    const reported: string[] = [];
    if (r.chat)
      reported.push(`chat ${ms(r.chat.relayReportedOverhead.p50)} / ${ms(r.chat.relayReportedOverhead.p99)}`);
    if (r.embeddings)
      reported.push(
        `embeddings ${ms(r.embeddings.relayReportedOverhead.p50)} / ${ms(r.embeddings.relayReportedOverhead.p99)}`,
      );
    if (r.stream)
      reported.push(
        `stream ${ms(r.stream.relayReportedOverhead.p50)} / ${ms(r.stream.relayReportedOverhead.p99)}`,
      );
    if (reported.length > 0) {
      out.push(`Relay's own estimate (x-kuberelay-overhead-ms, p50 / p99): ${reported.join('; ')}.`);
      out.push('');
    }
  }
  if (r.load.length > 0) {
    out.push(`### Under load (${r.params.durationS} s per path per level, ABBA segments)`);
    out.push('');
    out.push(
      table(
        [
          'concurrency',
          'direct req/s',
          'relay req/s',
          'direct p50 / p99',
          'relay p50 / p99',
          'added p50 / p99',
          'errors d / r',
          'CPU cores relay / mock / loader / other (relay phase)',
          'relay CPU ms/req',
          'relay peak RSS',
        ],
        r.load.map((l) => [
          String(l.concurrency),
          fmt0(l.direct.rps),
          `**${fmt0(l.relay.rps)}**`,
          `${ms(l.direct.latency.p50)} / ${ms(l.direct.latency.p99)}`,
          `${ms(l.relay.latency.p50)} / ${ms(l.relay.latency.p99)}`,
          `${sms(l.added.p50)} / ${sms(l.added.p99)}`,
          `${l.direct.errors} / ${l.relay.errors}`,
          `${fmt2(l.relay.cpu.relay)} / ${fmt2(l.relay.cpu.mock)} / ${fmt2(l.relay.cpu.loader)} / ${fmt2(l.relay.cpu.other)}`,
          fmt2(l.relay.relayCpuMsPerRequest),
          `${fmt1(l.relayPeakRssBytes / MB)} MB`,
        ]),
      ),
    );
    out.push('');
    out.push(
      'Direct phase CPU (mock / loader / other): ' +
        r.load
          .map(
            (l) =>
              `c=${l.concurrency}: ${fmt2(l.direct.cpu.mock)} / ${fmt2(l.direct.cpu.loader)} / ${fmt2(l.direct.cpu.other)}`,
          )
          .join('; ') +
        '.',
    );
    out.push('');
  }
  const mem = r.memory;
  out.push('### Memory (RSS)');
  out.push('');
  out.push(
    table(
      [
        'process',
        'idle',
        'after concurrency-1 runs',
        'peak (sampled 10/s)',
        'peak (VmHWM)',
        'end',
        'of which file-backed at end',
      ],
      [
        [
          'relay',
          `${fmt1(mem.relay.idleBytes / MB)} MB`,
          `${fmt1(mem.relay.afterSerialBytes / MB)} MB`,
          `${fmt1(mem.relay.peakSampledBytes / MB)} MB`,
          `${fmt1(mem.relay.hwmBytes / MB)} MB`,
          `${fmt1(mem.relay.endBytes / MB)} MB`,
          `${fmt1(mem.relay.endFileBackedBytes / MB)} MB`,
        ],
        [
          'mock upstream',
          `${fmt1(mem.mock.idleBytes / MB)} MB`,
          '',
          `${fmt1(mem.mock.peakSampledBytes / MB)} MB`,
          `${fmt1(mem.mock.hwmBytes / MB)} MB`,
          '',
          `${fmt1(mem.mock.endFileBackedBytes / MB)} MB`,
        ],
        ['loader (this process)', '', '', `${fmt1(mem.loaderPeakBytes / MB)} MB`, '', '', ''],
      ],
    ),
  );
  out.push('');
  const heap = (h: HeapFigures | undefined) =>
    h
      ? `V8 heap used ${fmt1(h.heapUsedBytes / MB)} MB of ${fmt1(h.heapTotalBytes / MB)} MB, external ${fmt1(h.externalBytes / MB)} MB`
      : 'n/a';
  out.push(`Relay heap (from its /metrics): idle ${heap(mem.relayHeapIdle)}; end ${heap(mem.relayHeapEnd)}.`);
  out.push('');
  out.push('### Targets (DESIGN.md)');
  out.push('');
  out.push(
    table(
      ['target', 'wanted', 'measured', 'met'],
      r.targets.map((t) => [t.name, t.target, t.measured, t.met === null ? '—' : t.met ? 'yes' : '**no**']),
    ),
  );
  out.push('');
  out.push(`Errors: ${r.totalErrors}.`);
  const samples = [
    ...(r.chat?.errorSamples ?? []),
    ...(r.embeddings?.errorSamples ?? []),
    ...(r.stream?.errorSamples ?? []),
    ...r.load.flatMap((l) => l.errorSamples),
  ];
  if (samples.length > 0) out.push(`First errors: ${samples.slice(0, 5).join(' | ')}`);
  return `${out.join('\n')}\n`;
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

async function setMockFaults(mockURL: string, faults: Record<string, number> | null) {
  const res = await fetch(`${mockURL}/_mock/faults`, {
    method: faults ? 'PUT' : 'DELETE',
    headers: { 'content-type': 'application/json' },
    body: faults ? JSON.stringify(faults) : undefined,
  });
  if (!res.ok) throw new Error(`mock faults: ${res.status} ${await res.text()}`);
}
