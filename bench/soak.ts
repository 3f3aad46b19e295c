// Soak benchmark: many mixed requests through one relay process, to show that nothing accumulates.
// Not a test (nothing here is timed against a target); figures and method in BENCHMARKS.md ("Soak").
//
//   npm run bench:soak                          100k requests (a few minutes), markdown on stdout
//   npm run bench:soak -- --requests 2000       shorter
//   npm run bench:soak -- --json out.json       also write the raw figures
//   npm run bench:soak -- --database postgresql   keys and logs in a private PostgreSQL instead
//   options: --requests N --concurrency N --max-seconds S --sample-ms MS --no-redis --json FILE
//
// The relay runs as `kuberelay relay --config FILE` with the chart's default environment (client
// keys on, embedded database, LOG_LEVEL from the chart) and the image's NODE_ENV/NODE_OPTIONS, plus REDIS_URL (a private redis-server,
// so permits and limits live in Redis as in a fleet); with `--database postgresql` it gets a
// DATABASE_URL, migrated first by `kuberelay migrate`. Upstreams are `kuberelay mock-upstream`
// processes, one per behaviour. Everything binds to 127.0.0.1. The mix, by request index:
//   ok           non-stream chat, 200
//   stream       streamed chat, 200 ending in [DONE]
//   error        the upstream answers 500: an OpenAI-shaped 5xx from the relay
//   abort        a slow stream the client abandons after its first chunk
//   broken       a stream the upstream cuts mid-way: 200, then an error event, no [DONE]
// Before (after a warm-up) and after (once the relay is idle): RSS, open fds (/proc/PID/fd),
// kuberelay_inflight_requests and kuberelay_queue_depth; RSS is also sampled during the run.
// At the end a permit probe sends exactly `maxConcurrent` slow requests to a channel without a
// queue: all are admitted only if every permit came back. The run stops by itself: after
// --requests, or at --max-seconds (default 900) with what was done.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { parse } from 'yaml';
import { type Postgres, startPostgres } from '../test/helpers/postgres.ts';
import { kuberelay } from '../test/helpers/process.ts';
import {
  config,
  freePort,
  machine,
  metric,
  type Proc,
  ROOT,
  setFaults,
  startMock,
  startRedis,
  type TestRedis,
  table,
  tempDir,
} from './redis-fleet.ts';

const KINDS = ['ok', 'stream', 'error', 'abort', 'broken'] as const;
type Kind = (typeof KINDS)[number];
// Out of 20 requests: 8 ok, 5 stream, 3 error, 2 abort, 2 broken.
const MIX: Kind[] = [
  ...Array<Kind>(8).fill('ok'),
  ...Array<Kind>(5).fill('stream'),
  ...Array<Kind>(3).fill('error'),
  ...Array<Kind>(2).fill('abort'),
  ...Array<Kind>(2).fill('broken'),
];
const MODEL: Record<Kind, string> = {
  ok: 'gpt-4o-mini',
  stream: 'gpt-4o-mini',
  error: 'err-model',
  abort: 'slow-model',
  broken: 'broken-model',
};
const PROBE_PERMITS = 8;

export interface SoakSample {
  atS: number;
  done: number;
  rssBytes: number;
}

export interface SoakSnapshot {
  rssBytes: number;
  /** V8 heap in use (the relay's default process metrics): what a leak would grow. */
  heapUsedBytes: number;
  fds: number;
  inflight: number;
  queueDepth: number;
}

export interface SoakResult {
  version: 1;
  machine: string;
  redis: boolean;
  database: 'embedded' | 'postgresql';
  requests: number;
  concurrency: number;
  durationS: number;
  stoppedEarly: boolean;
  /** Per kind: how many were sent, and how many ended as that kind should. */
  kinds: Record<Kind, { sent: number; expected: number }>;
  /** Requests that ended otherwise (status, body or a client-side timeout), by reason. */
  unexpected: Record<string, number>;
  before: SoakSnapshot;
  after: SoakSnapshot;
  /** Seconds the relay took to report 0 in flight and 0 queued after the last request. */
  settleS: number;
  samples: SoakSample[];
  peakRssBytes: number;
  permitProbe: { permits: number; admitted: number };
  relayAlive: boolean;
}

function options() {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '100000' },
      concurrency: { type: 'string', default: '16' },
      'max-seconds': { type: 'string', default: '900' },
      'sample-ms': { type: 'string', default: '1000' },
      'no-redis': { type: 'boolean', default: false },
      database: { type: 'string', default: 'embedded' },
      json: { type: 'string' },
    },
  });
  return {
    requests: Number(values.requests),
    concurrency: Number(values.concurrency),
    maxSeconds: Number(values['max-seconds']),
    sampleMs: Number(values['sample-ms']),
    redis: !values['no-redis'],
    database: values.database as 'embedded' | 'postgresql',
    json: values.json,
  };
}

/** NODE_ENV and NODE_OPTIONS as the image sets them (the Dockerfile's ENV lines). */
function imageEnv(): Record<string, string> {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('ENV ')) continue;
    for (const m of line.slice(4).matchAll(/(\w+)=(\S+)/g)) env[m[1]!] = m[2]!;
  }
  return { NODE_ENV: env.NODE_ENV ?? '', NODE_OPTIONS: env.NODE_OPTIONS ?? '' };
}

/** The relay environment the chart renders by default (charts/kuberelay/templates/relay.yaml). */
function chartEnv(): Record<string, string> {
  const r = parse(readFileSync(path.join(ROOT, 'charts/kuberelay/values.yaml'), 'utf8')).relay;
  return {
    ...imageEnv(),
    KUBERELAY_AUTH: String(r.auth),
    LOG_LEVEL: String(r.logLevel),
    KUBERELAY_SHUTDOWN_TIMEOUT_MS: String(Number(r.shutdownTimeoutSeconds) * 1000),
  };
}

function rssBytes(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

function fds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

async function snapshot(relay: Proc): Promise<SoakSnapshot> {
  const pid = relay.child.pid!;
  return {
    rssBytes: rssBytes(pid),
    heapUsedBytes: await metric(relay.url, 'kuberelay_nodejs_heap_size_used_bytes'),
    fds: fds(pid),
    inflight: await metric(relay.url, 'kuberelay_inflight_requests'),
    queueDepth: await metric(relay.url, 'kuberelay_queue_depth'),
  };
}

const body = (kind: Kind) =>
  JSON.stringify({
    model: MODEL[kind],
    messages: [{ role: 'user', content: `soak ${kind}: tell me something` }],
    max_tokens: kind === 'abort' ? 40 : 12,
    stream: kind !== 'ok' && kind !== 'error',
  });

/** One request of `kind`; returns undefined when it ended as expected, else why not. */
async function one(pool: Pool, secret: string, kind: Kind): Promise<string | undefined> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error('timeout')), 30_000);
  try {
    const res = await pool.request({
      path: '/v1/chat/completions',
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
      body: body(kind),
      signal: ac.signal,
    });
    if (kind === 'abort') {
      if (res.statusCode !== 200) return `abort: status ${res.statusCode}`;
      for await (const _ of res.body) break; // the first chunk, then leave
      res.body.destroy();
      return undefined;
    }
    const text = await res.body.text();
    if (kind === 'error') {
      if (res.statusCode < 500) return `error: status ${res.statusCode}`;
      return JSON.parse(text)?.error?.message ? undefined : 'error: not in OpenAI shape';
    }
    if (res.statusCode !== 200) return `${kind}: status ${res.statusCode}`;
    if (kind === 'ok') return JSON.parse(text)?.choices?.length === 1 ? undefined : 'ok: no choices';
    const done = text.includes('data: [DONE]');
    if (kind === 'stream') return done ? undefined : 'stream: no [DONE]';
    return !done && text.includes('"error"') ? undefined : 'broken: no error event';
  } catch (err) {
    return ac.signal.aborted ? `${kind}: no answer in 30 s` : `${kind}: ${(err as Error).message}`;
  } finally {
    clearTimeout(timer);
  }
}

/** The relay process; an embedded database on a busy machine can take a while to open. */
async function startRelay(file: string, env: Record<string, string>): Promise<Proc> {
  const p = kuberelay(['relay', '--config', file], {
    PORT: '0',
    HOST: '127.0.0.1',
    POD_NAME: 'soak',
    ...env,
  });
  const m = await p.waitFor(/"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*relay listening/, 120_000);
  const child = p.child;
  return {
    name: 'soak-relay',
    url: m[1]!,
    child,
    output: p.output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await p.exited();
      clearTimeout(t);
    },
  };
}

async function main() {
  const o = options();
  if (o.database !== 'embedded' && o.database !== 'postgresql')
    throw new Error(`--database must be embedded or postgresql, not "${o.database}"`);
  const tmp = tempDir();
  const procs: Proc[] = [];
  let redis: TestRedis | undefined;
  let pg: Postgres | undefined;
  try {
    const [ok, err, slow, broken] = await Promise.all(
      ['ok', 'err', 'slow', 'broken'].map((n) => startMock(`soak-${n}`)),
    );
    procs.push(ok!, err!, slow!, broken!);
    await setFaults(err!, { status: 500 });
    await setFaults(slow!, { chunkDelayMs: 5 });
    await setFaults(broken!, { streamDieAfter: 3 });
    if (o.redis) redis = await startRedis();
    let databaseUrl: string | undefined;
    if (o.database === 'postgresql') {
      pg = await startPostgres();
      databaseUrl = await pg.createDatabase('soak');
      execFileSync(process.execPath, [path.join(ROOT, 'cli', 'index.ts'), 'migrate'], {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: databaseUrl },
        stdio: 'ignore',
      });
    }

    // Failing channels keep being tried (a cooldown would turn their errors into quick 503s).
    const tolerant = '  cooldown: { failureThreshold: 1000, duration: 1s, maxDuration: 1s }\n';
    const limits = '  limits: { maxConcurrent: 64, maxQueue: 1000 }\n';
    const yaml = config([
      { name: 'ok', baseURL: ok!.url, extra: limits },
      {
        name: 'probe',
        baseURL: ok!.url,
        models: ['probe-model'],
        extra: `  limits: { maxConcurrent: ${PROBE_PERMITS}, maxQueue: 0 }\n`,
      },
      { name: 'err', baseURL: err!.url, models: ['err-model'], extra: limits + tolerant },
      { name: 'slow', baseURL: slow!.url, models: ['slow-model'], extra: limits },
      { name: 'broken', baseURL: broken!.url, models: ['broken-model'], extra: limits + tolerant },
    ]);
    const adminPort = await freePort();
    const adminToken = randomBytes(24).toString('hex');
    const relay = await startRelay(tmp.write('config.yaml', yaml), {
      ...chartEnv(),
      ADMIN_PORT: String(adminPort),
      ADMIN_HOST: '127.0.0.1',
      ADMIN_TOKEN: adminToken,
      KUBERELAY_DATA_DIR: path.join(tmp.dir, 'data'),
      ...(redis ? { REDIS_URL: redis.url } : {}),
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    });
    procs.push(relay);
    const created = await fetch(`http://127.0.0.1:${adminPort}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'soak' }),
    });
    if (created.status !== 201) throw new Error(`creating a key: ${created.status} ${await created.text()}`);
    const { secret } = (await created.json()) as { secret: string };

    const pool = new Pool(relay.url, { connections: o.concurrency, pipelining: 1 });
    const kinds = Object.fromEntries(KINDS.map((k) => [k, { sent: 0, expected: 0 }])) as SoakResult['kinds'];
    const unexpected: Record<string, number> = {};
    const run = async (n: number, count: boolean, deadline: number) => {
      let next = 0;
      const worker = async () => {
        while (next < n && Date.now() < deadline) {
          const kind = MIX[next++ % MIX.length]!;
          const why = await one(pool, secret, kind);
          if (!count) continue;
          kinds[kind].sent++;
          if (why === undefined) kinds[kind].expected++;
          else unexpected[why] = (unexpected[why] ?? 0) + 1;
        }
      };
      await Promise.all(Array.from({ length: o.concurrency }, worker));
    };

    // Warm-up, then the relay at rest.
    await run(Math.min(1000, Math.max(40, o.requests / 50)), false, Number.POSITIVE_INFINITY);
    const idle = async () => {
      const t0 = Date.now();
      for (;;) {
        const s = await snapshot(relay);
        if ((s.inflight === 0 && s.queueDepth === 0) || Date.now() - t0 > 30_000)
          return (Date.now() - t0) / 1000;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await idle();
    const before = await snapshot(relay);

    const started = Date.now();
    const deadline = started + o.maxSeconds * 1000;
    const samples: SoakSample[] = [];
    let progress = 0;
    const sampler = setInterval(() => {
      samples.push({
        atS: (Date.now() - started) / 1000,
        done: progress,
        rssBytes: rssBytes(relay.child.pid!),
      });
    }, o.sampleMs);
    const counter = setInterval(() => {
      progress = KINDS.reduce((s, k) => s + kinds[k].sent, 0);
    }, 100);
    await run(o.requests, true, deadline);
    clearInterval(sampler);
    clearInterval(counter);
    const durationS = (Date.now() - started) / 1000;
    const total = KINDS.reduce((s, k) => s + kinds[k].sent, 0);
    samples.push({ atS: durationS, done: total, rssBytes: rssBytes(relay.child.pid!) });

    const settleS = await idle();
    await pool.close();
    const after = await snapshot(relay);

    // Every permit back: exactly PROBE_PERMITS slow requests to a channel without a queue.
    await setFaults(ok!, { latencyMs: 300 });
    const probePool = new Pool(relay.url, { connections: PROBE_PERMITS });
    const probe = await Promise.all(
      Array.from({ length: PROBE_PERMITS }, async () => {
        const r = await probePool.request({
          path: '/v1/chat/completions',
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
          body: JSON.stringify({ model: 'probe-model', messages: [{ role: 'user', content: 'probe' }] }),
        });
        await r.body.dump();
        return r.statusCode;
      }),
    );
    await probePool.close();
    await setFaults(ok!, null);

    const result: SoakResult = {
      version: 1,
      machine: machine(),
      redis: redis !== undefined,
      database: o.database,
      requests: total,
      concurrency: o.concurrency,
      durationS,
      stoppedEarly: total < o.requests,
      kinds,
      unexpected,
      before,
      after,
      settleS,
      samples,
      peakRssBytes: Math.max(...samples.map((x) => x.rssBytes)),
      permitProbe: { permits: PROBE_PERMITS, admitted: probe.filter((s) => s === 200).length },
      relayAlive: relay.child.exitCode === null,
    };
    if (o.json) writeFileSync(o.json, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(report(result));
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await redis?.close();
    await pg?.close();
    tmp.remove();
  }
}

const mb = (b: number) => (b / 1024 / 1024).toFixed(1);

function report(r: SoakResult): string {
  const rows = KINDS.map((k) => [k, String(r.kinds[k].sent), String(r.kinds[k].expected)]);
  const snap = (name: string, f: (s: SoakSnapshot) => string) => [name, f(r.before), f(r.after)];
  // RSS over time: about ten points spread over the run.
  const step = Math.max(1, Math.ceil(r.samples.length / 10));
  const over = r.samples.filter((_, i) => i % step === 0 || i === r.samples.length - 1);
  const unexpected = Object.entries(r.unexpected);
  return [
    `# Soak: ${r.requests} requests, concurrency ${r.concurrency}, ${r.database} database, ${r.redis ? 'with' : 'without'} Redis`,
    '',
    `${r.machine}; ${r.durationS.toFixed(1)} s (${(r.requests / r.durationS).toFixed(0)} req/s)${r.stoppedEarly ? ', stopped at --max-seconds' : ''}`,
    '',
    table(['kind', 'sent', 'ended as expected'], rows),
    '',
    unexpected.length === 0
      ? 'Unexpected outcomes: none.'
      : `Unexpected outcomes: ${unexpected.map(([k, v]) => `${k} x${v}`).join('; ')}`,
    '',
    table(
      ['relay', 'before', 'after'],
      [
        snap('RSS (MB)', (s) => mb(s.rssBytes)),
        ['RSS peak during the run (MB)', '', mb(r.peakRssBytes)],
        snap('V8 heap used (MB)', (s) => mb(s.heapUsedBytes)),
        snap('open fds', (s) => String(s.fds)),
        snap('kuberelay_inflight_requests', (s) => String(s.inflight)),
        snap('kuberelay_queue_depth', (s) => String(s.queueDepth)),
      ],
    ),
    '',
    `Idle again ${r.settleS.toFixed(2)} s after the last request; permit probe: ${r.permitProbe.admitted}/${r.permitProbe.permits} admitted; relay ${r.relayAlive ? 'alive' : 'DEAD'}.`,
    '',
    table(
      ['t (s)', 'requests done', 'RSS (MB)'],
      over.map((s) => [s.atS.toFixed(0), String(s.done), mb(s.rssBytes)]),
    ),
    '',
  ].join('\n');
}

await main();
