// What the limits, permits and metric-series steps cost one request on the default single-pod path
// (no Redis), as relay/proxy.ts and respond.ts call them for a non-streamed chat request in the
// `limits` scenario of bench/run/scenarios.ts: admitRequest (two request policies: requests and
// tokens per client IP, a global concurrent limit), admitChannel (no channel policy), the channel
// permit (maxConcurrent 1000) from the memory store through the concurrency gate, the in-flight
// gauge and upstream duration, channel stats, release, charge + finish (settle), the store's
// spend counters, and the response's metric updates.
//
//   node --expose-gc --min-semi-space-size=64 --max-semi-space-size=64 bench/limits-path.ts \
//     [--a ROOT_A] [--b ROOT_B] [--rounds 30] [--per-round 20000]
//
// ROOT_A / ROOT_B are source trees (a `git archive REV` extracted, node_modules linked): both are
// loaded into this process and run interleaved round by round (ABBA), so drift hits both alike.
// Without --a only B (default: this tree) is measured. With --expose-gc it also gives the bytes
// each request allocates: young-generation growth over 2,000 requests after a forced collection,
// with a young generation large enough that none runs meanwhile (median of six trials). Unlike
// the time, that does not depend on what else the machine runs.

import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string', default: path.resolve(import.meta.dirname, '..') },
    rounds: { type: 'string', default: '30' },
    'per-round': { type: 'string', default: '20000' },
  },
});
const ROUNDS = Number(values.rounds);
const PER_ROUND = Number(values['per-round']);

const POLICIES = [
  {
    id: 'default/bench-per-ip',
    namespace: 'default',
    name: 'bench-per-ip',
    generation: 1,
    match: {},
    limitBy: 'clientIP',
    limits: [
      { kind: 'requests', amount: 1e9, perMs: 60_000 },
      { kind: 'tokens', amount: 1e12, perMs: 60_000 },
    ],
    algorithm: 'sliding-window',
    onRedisUnavailable: 'allow',
    shadow: false,
  },
  {
    id: 'default/bench-global',
    namespace: 'default',
    name: 'bench-global',
    generation: 1,
    match: {},
    limitBy: 'global',
    limits: [{ kind: 'concurrent', amount: 100_000 }],
    algorithm: 'sliding-window',
    onRedisUnavailable: 'allow',
    shadow: false,
  },
];

const ROUTE = '/v1/chat/completions';

async function load(root: string) {
  const imp = (p: string) => import(path.join(root, p));
  const [{ admitRequest }, { channelPermit }, { ConcurrencyGate }, { MemoryStore }, { MemoryLimiter }] =
    await Promise.all([
      imp('relay/limits.ts'),
      imp('relay/permits.ts'),
      imp('core/concurrency.ts'),
      imp('core/state/memory-store.ts'),
      imp('core/ratelimit/memory-limiter.ts'),
    ]);
  const [{ createRelayMetrics }, { ChannelStats }] = await Promise.all([
    imp('relay/metrics.ts'),
    imp('relay/channel-stats.ts'),
  ]);
  const store = new MemoryStore();
  const gate = new ConcurrencyGate(store);
  const metrics = createRelayMetrics({ defaultMetrics: false });
  const stats = new ChannelStats();
  const deps = { limiter: new MemoryLimiter(), metrics, log: { warn() {}, debug() {} } };
  const config = { policies: POLICIES };
  const channel = {
    id: 'default/main',
    priority: 0,
    limits: { maxConcurrent: 1000, maxQueue: 1000, queueTimeoutMs: 30_000 },
    timeouts: { totalMs: 600_000 },
  };
  const candidates = [{ channel, model: { name: 'gpt-4o-mini', upstreamName: 'gpt-4o-mini' } }];
  const reply = { headers(_h: Record<string, string>) {} };
  const ac = new AbortController();
  const permitOpts = { signal: ac.signal, available: () => true, leaseMarginMs: 30_000 };
  let n = 0;

  return async function request() {
    // A fresh model string per request, as parsed from each body.
    const model = JSON.parse('"gpt-4o-mini"') as string;
    const req = {
      client: { keyId: undefined, labels: {} },
      ip: `10.0.0.${n++ & 63}`,
      headers: { 'content-length': '140' },
      trace: undefined,
    };
    const body = { model, messages: [], max_tokens: 16 };
    const rl = await admitRequest(deps, config, ROUTE, model, body, req, reply);
    await rl.admitChannel(channel.id);
    const r = await channelPermit(gate, candidates, 0, permitOpts);
    if (!r.ok) throw new Error(`no permit: ${r.reason}`);
    const inflight = metrics.inflight.labels(channel.id);
    inflight.inc();
    metrics.upstreamDuration.labels(channel.id, model).observe(0.0012);
    stats.success(channel.id, 1.2);
    metrics.overhead.labels(ROUTE).observe(0.00021);
    const spend = { promptTokens: 12, completionTokens: 34, cost: 0.0000123 };
    rl.charge(spend);
    await store.recordSpend({ ...spend, channelId: channel.id, model, at: Date.now() });
    inflight.dec();
    await gate.release(r.lease);
    rl.endAttempt();
    metrics.requests.labels(ROUTE, model, channel.id, '200').inc();
    metrics.observeRequestDuration({ route: ROUTE, model }, 0.0015);
    metrics.tokens.labels(channel.id, model, 'prompt').inc(12);
    metrics.tokens.labels(channel.id, model, 'completion').inc(34);
    metrics.cost.labels(channel.id, model).inc(spend.cost);
    metrics.attempts.labels(ROUTE).observe(1);
    rl.finish();
  };
}

const sides: { name: string; run: () => Promise<void>; us: number[] }[] = [];
if (values.a) sides.push({ name: 'A', run: await load(path.resolve(values.a)), us: [] });
sides.push({ name: 'B', run: await load(path.resolve(values.b)), us: [] });

async function round(side: (typeof sides)[number], count: number) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await side.run();
  return Number(process.hrtime.bigint() - t0) / 1000 / count;
}

for (const s of sides) await round(s, PER_ROUND); // warm-up

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const gc = (globalThis as { gc?: () => void }).gc;
const { getHeapSpaceStatistics } = await import('node:v8');
// The young generation only: what drives scavenges (compiled code and old-space growth are not
// per-request garbage, and made the whole-heap figure jump between runs).
const young = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_used_size;
async function allocated(side: (typeof sides)[number]): Promise<number> {
  const per: number[] = [];
  for (let i = 0; i < 7; i++) {
    gc!();
    const h0 = young();
    for (let j = 0; j < 2000; j++) await side.run();
    per.push((young() - h0) / 2000);
  }
  return median(per.slice(1)); // the first after warm-up can fall on a young generation still growing
}
if (gc) {
  for (const s of sides)
    console.log(`${s.name}: ${(await allocated(s)).toFixed(0)} bytes allocated per request`);
}
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? sides : [...sides].reverse();
  for (const s of order) s.us.push(await round(s, PER_ROUND));
}

for (const s of sides) {
  console.log(
    `${s.name}: median ${median(s.us).toFixed(2)} µs/request (min ${Math.min(...s.us).toFixed(2)})`,
  );
}
if (sides.length === 2) {
  const [a, b] = sides as [(typeof sides)[number], (typeof sides)[number]];
  const diffs = a.us.map((x, i) => b.us[i]! - x);
  const lower = diffs.filter((d) => d < 0).length;
  console.log(
    `B - A: median ${median(diffs).toFixed(2)} µs/request per round (${((median(diffs) / median(a.us)) * 100).toFixed(1)} %), B lower in ${lower} of ${diffs.length} rounds`,
  );
}
process.exit(0);
