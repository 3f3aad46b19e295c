// Rate-limit benchmarks with Redis: what a RateLimitPolicy costs per request, and whether a fleet
// over-admits.
//
//   npm run bench:redis                      both Redis benchmarks (this one and cooldown propagation)
//   node bench/limiter.ts [--rounds N] [--seconds S] [--trials T] [--json out.json]
//
// 1. Cost per request. Five relay processes, identical except for state and policies, measured in
//    the same run with requests interleaved round by round (so drift hits all alike):
//      memory        no REDIS_URL, no policy
//      memory+3      no REDIS_URL, three policies (in-process limiter)
//      redis         REDIS_URL, no policy (the shared store on the request path)
//      redis+1       REDIS_URL, one request policy (one Lua call per request)
//      redis+3       REDIS_URL, three policies: requests, tokens and concurrent (one Lua call to
//                    admit, one to settle tokens and the permit afterwards)
//    Limits are far above the load so nothing is refused: this measures the checking, not refusals.
//    Figures: the relay's own overhead (x-kuberelay-overhead-ms: total minus upstream time) and the
//    client-side latency at concurrency 1, then throughput at concurrency 32.
// 2. Over-admission. Three relays share Redis with a limit of 100 requests per minute per tenant;
//    each trial fires 300 concurrent requests for a fresh tenant, 100 at each relay, and counts
//    the 200s. The same with three relays without Redis shows what per-pod limits do.

import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import {
  config,
  machine,
  ms,
  type Proc,
  startMock,
  startRedis,
  startRelay,
  stats,
  table,
  tempDir,
} from './redis-fleet.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '300' },
    seconds: { type: 'string', default: '8' },
    concurrency: { type: 'string', default: '32' },
    trials: { type: 'string', default: '20' },
    json: { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});
const quick = args.quick === true;
const ROUNDS = quick ? 200 : Number(args.rounds);
const WARMUP = quick ? 50 : Number(args.warmup);
const SECONDS = quick ? 2 : Number(args.seconds);
const CONCURRENCY = Number(args.concurrency);
const TRIALS = quick ? 3 : Number(args.trials);

const BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Hello! My order has not arrived yet. What can I do about it?' }],
  max_tokens: 16,
});

const policyDocs = (kinds: 'one' | 'three') => {
  const requests = `apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: per-tenant }
spec:
  limitBy: header:x-tenant
  limits: [{ requests: 1000000000, per: 1m }]
`;
  if (kinds === 'one') return [requests];
  return [
    requests,
    `apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: fleet-tokens }
spec:
  limitBy: global
  algorithm: fixed-window
  limits: [{ tokens: 1000000000000, per: 1h }]
`,
    `apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: tenant-concurrency }
spec:
  limitBy: header:x-tenant
  limits: [{ concurrent: 100000 }]
`,
  ];
};

interface Target {
  name: string;
  relay: Proc;
  pool: Pool;
}

interface Sample {
  overheadMs: number;
  totalMs: number;
}

let tenantSeq = 0;
const nextTenant = () => `tenant-${tenantSeq++ % 100}`;

async function send(t: Target, tenant = nextTenant()): Promise<{ status: number; sample?: Sample }> {
  const t0 = performance.now();
  const res = await t.pool.request({
    path: '/v1/chat/completions',
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-tenant': tenant },
    body: BODY,
  });
  await res.body.text();
  const totalMs = performance.now() - t0;
  const oh = res.headers['x-kuberelay-overhead-ms'];
  if (res.statusCode !== 200 || typeof oh !== 'string') return { status: res.statusCode };
  return { status: res.statusCode, sample: { overheadMs: Number(oh), totalMs } };
}

function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

async function costPerRequest(redisUrl: string, mockUrl: string) {
  const tmp = tempDir();
  const channel = [{ name: 'upstream', baseURL: mockUrl }];
  const plain = tmp.write('plain.yaml', config(channel));
  const one = tmp.write('one.yaml', config(channel, policyDocs('one')));
  const three = tmp.write('three.yaml', config(channel, policyDocs('three')));
  const redisEnv = { REDIS_URL: redisUrl };
  const specs: [string, string, Record<string, string>][] = [
    ['memory', plain, {}],
    ['memory+3', three, {}],
    ['redis', plain, redisEnv],
    ['redis+1', one, redisEnv],
    ['redis+3', three, redisEnv],
  ];
  const targets: Target[] = [];
  try {
    for (const [name, file, env] of specs) {
      const relay = await startRelay(name, file, env);
      targets.push({ name, relay, pool: new Pool(relay.url, { connections: CONCURRENCY }) });
    }
    for (let i = 0; i < WARMUP; i++) for (const t of targets) await send(t);
    const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]));
    let errors = 0;
    for (let i = 0; i < ROUNDS; i++) {
      for (const t of shuffle([...targets])) {
        const r = await send(t);
        if (r.sample) samples.get(t.name)!.push(r.sample);
        else errors++;
      }
    }
    // Throughput in one-second slices, targets in a new random order each second, so drift and
    // warm-up spread over all of them instead of favouring whoever runs last.
    const tp = new Map<string, { lat: number[]; errors: number }>(
      targets.map((t) => [t.name, { lat: [], errors: 0 }]),
    );
    for (let second = 0; second < SECONDS; second++) {
      for (const t of shuffle([...targets])) {
        const acc = tp.get(t.name)!;
        const end = performance.now() + 1000;
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (performance.now() < end) {
              const r = await send(t);
              if (r.sample) acc.lat.push(r.sample.totalMs);
              else acc.errors++;
            }
          }),
        );
      }
    }
    const throughput = new Map(
      [...tp].map(([name, a]) => [
        name,
        { rps: a.lat.length / SECONDS, latency: stats(a.lat), errors: a.errors },
      ]),
    );
    return {
      errors,
      serial: Object.fromEntries(
        targets.map((t) => {
          const s = samples.get(t.name)!;
          return [
            t.name,
            { overhead: stats(s.map((x) => x.overheadMs)), total: stats(s.map((x) => x.totalMs)) },
          ];
        }),
      ),
      throughput: Object.fromEntries(throughput),
    };
  } finally {
    await Promise.all(
      targets.map(async (t) => {
        await t.pool.close();
        await t.relay.stop();
      }),
    );
    tmp.remove();
  }
}

async function overAdmission(redisUrl: string, mockUrl: string) {
  const tmp = tempDir();
  const file = tmp.write(
    'limit.yaml',
    config(
      [{ name: 'upstream', baseURL: mockUrl }],
      [
        `apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: per-tenant }
spec:
  limitBy: header:x-tenant
  limits: [{ requests: 100, per: 1m }]
`,
      ],
    ),
  );
  const out: Record<string, number[]> = {};
  try {
    for (const [mode, env] of [
      ['redis', { REDIS_URL: redisUrl }],
      ['memory (per pod)', {}],
    ] as const) {
      const relays = await Promise.all([0, 1, 2].map((i) => startRelay(`${mode}-${i}`, file, env)));
      const pools = relays.map((r) => new Pool(r.url, { connections: 100 }));
      const admitted: number[] = [];
      try {
        for (let trial = 0; trial < TRIALS; trial++) {
          const tenant = `burst-${mode}-${trial}-${Date.now()}`;
          const results = await Promise.all(
            Array.from({ length: 300 }, (_, i) =>
              send({ name: mode, relay: relays[i % 3]!, pool: pools[i % 3]! }, tenant),
            ),
          );
          admitted.push(results.filter((r) => r.status === 200).length);
        }
      } finally {
        await Promise.all(pools.map((p) => p.close()));
        await Promise.all(relays.map((r) => r.stop()));
      }
      out[mode] = admitted;
    }
  } finally {
    tmp.remove();
  }
  return out;
}

async function main() {
  const startedAt = new Date().toISOString();
  const redis = await startRedis();
  const mock = await startMock('upstream');
  try {
    const cost = await costPerRequest(redis.url, mock.url);
    const admission = await overAdmission(redis.url, mock.url);
    const base = cost.serial.memory!;
    const rows = Object.entries(cost.serial).map(([name, s]) => {
      const tp = cost.throughput[name]!;
      return [
        name,
        ms(s.overhead.p50, 3),
        ms(s.overhead.p99, 3),
        ms(s.overhead.p50 - base.overhead.p50, 3),
        ms(s.total.p50, 3),
        ms(s.total.p99, 3),
        tp.rps.toFixed(0),
        ms(tp.latency.p99, 1),
      ];
    });
    const md = [
      `### Limiter cost per request (${startedAt}; ${machine()}; redis-server on the same machine)`,
      '',
      `Concurrency 1: ${ROUNDS} rounds, one request per relay per round in random order (${cost.errors} errors). ` +
        `Throughput: concurrency ${CONCURRENCY}, ${SECONDS} one-second slices per relay, relays in random order each second.`,
      '',
      table(
        [
          'relay',
          'overhead p50 ms',
          'overhead p99 ms',
          'p50 vs memory ms',
          'client p50 ms',
          'client p99 ms',
          `req/s @${CONCURRENCY}`,
          `p99 @${CONCURRENCY} ms`,
        ],
        rows,
      ),
      '',
      '### Over-admission (limit 100 requests/min per tenant, 300 concurrent requests over 3 relays per trial)',
      '',
      table(
        ['relays', 'trials', 'admitted (min / mean / max)', 'over-admitted (max)'],
        Object.entries(admission).map(([mode, xs]) => {
          const s = stats(xs);
          return [
            mode,
            String(xs.length),
            `${Math.min(...xs)} / ${s.mean.toFixed(1)} / ${s.max}`,
            String(s.max - 100),
          ];
        }),
      ),
    ].join('\n');
    console.log(md);
    if (args.json) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(args.json, JSON.stringify({ startedAt, machine: machine(), cost, admission }, null, 2));
    }
  } finally {
    await mock.stop();
    await redis.close();
  }
}

await main();
