// What one relayed request's metric updates cost: prom-client's label-object calls (what the relay
// made before) against the relay's own families (relay/metric-series.ts) as the call sites use them
// now, for a non-streamed chat request with two RateLimitPolicies and client keys on: inflight
// inc/dec, upstream duration, overhead, requests, request duration, two token counters, cost, two
// policy decisions, the limiter check duration, the key check and cache hit, attempts.
//
//   node bench/metric-series.ts
//
// Interleaved in rounds (each way once per round, order alternating) so machine drift hits both.
// The prom-client twins are built from the families' own definitions (names, labels, buckets).

import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { CounterFamily, GaugeFamily, HistogramFamily } from '../relay/metric-series.ts';
import { createRelayMetrics } from '../relay/metrics.ts';

const ROUNDS = 40;
const PER_ROUND = 5_000;

const ours = createRelayMetrics({ defaultMetrics: false });
const registry = new Registry();
const twins = new Map<string, Counter | Gauge | Histogram>();
for (const m of Object.values(ours)) {
  if (!(m instanceof CounterFamily || m instanceof GaugeFamily || m instanceof HistogramFamily)) continue;
  const c = { name: m.name, help: m.help, labelNames: [...m.labelNames], registers: [registry] };
  twins.set(
    m.name,
    m instanceof CounterFamily
      ? new Counter(c)
      : m instanceof GaugeFamily
        ? new Gauge(c)
        : new Histogram({ ...c, buckets: [...m.buckets] }),
  );
}
const twin = <T>(f: { name: string }) => twins.get(f.name) as T;
const theirs = {
  inflight: twin<Gauge>(ours.inflight),
  upstreamDuration: twin<Histogram>(ours.upstreamDuration),
  overhead: twin<Histogram>(ours.overhead),
  requests: twin<Counter>(ours.requests),
  requestDuration: twin<Histogram>(ours.requestDuration),
  tokens: twin<Counter>(ours.tokens),
  cost: twin<Counter>(ours.cost),
  decisions: twin<Counter>(ours.ratelimitDecisions),
  check: twin<Histogram>(ours.ratelimitCheckDuration),
  attempts: twin<Histogram>(ours.attempts),
};
const theirOk = twin<Counter>(ours.auth).labels({ result: 'ok' });
const theirHit = twin<Counter>(ours.authCache).labels({ result: 'hit' });
const ourOk = ours.auth.labels({ result: 'ok' });
const ourHit = ours.authCache.labels({ result: 'hit' });

// Model names as the relay sees them: a fresh string parsed from each request's body.
const models = Array.from({ length: 999 }, (_, i) =>
  JSON.parse(`"${['gpt-4o-mini', 'gpt-4o', 'o3-mini'][i % 3]}"`),
);
const route = '/v1/chat/completions';
const channel = 'default/main';
let n = 0;

function before() {
  const model = models[n++ % models.length] as string;
  const t = theirs;
  theirOk.inc();
  theirHit.inc();
  t.check.observe(0.00004);
  t.decisions.inc({ policy: 'default/per-ip', decision: 'allowed' });
  t.decisions.inc({ policy: 'default/global', decision: 'allowed' });
  t.inflight.inc({ channel });
  t.upstreamDuration.observe({ channel, model }, 0.0012);
  t.inflight.dec({ channel });
  t.overhead.observe({ route }, 0.00021);
  t.requests.inc({ route, model, channel, code: '200' });
  t.requestDuration.observe({ route, model }, 0.0015);
  t.tokens.inc({ channel, model, type: 'prompt' }, 12);
  t.tokens.inc({ channel, model, type: 'completion' }, 34);
  t.cost.inc({ channel, model }, 0.0000123);
  t.attempts.observe({ route }, 1);
}

function after() {
  const model = models[n++ % models.length] as string;
  const m = ours;
  ourOk.inc();
  ourHit.inc();
  m.ratelimitCheckDuration.observe(0.00004);
  m.ratelimitDecisions.labels('default/per-ip', 'allowed').inc();
  m.ratelimitDecisions.labels('default/global', 'allowed').inc();
  const inflight = m.inflight.labels(channel);
  inflight.inc();
  m.upstreamDuration.labels(channel, model).observe(0.0012);
  inflight.dec();
  m.overhead.labels(route).observe(0.00021);
  m.requests.labels(route, model, channel, '200').inc();
  m.observeRequestDuration({ route, model }, 0.0015, undefined);
  m.tokens.labels(channel, model, 'prompt').inc(12);
  m.tokens.labels(channel, model, 'completion').inc(34);
  m.cost.labels(channel, model).inc(0.0000123);
  m.attempts.labels(route).observe(1);
}

function time(fn: () => void): number {
  const t = performance.now();
  for (let i = 0; i < PER_ROUND; i++) fn();
  return ((performance.now() - t) * 1000) / PER_ROUND; // µs per request
}

function median(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const a: number[] = [];
const b: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  if (r % 2 === 0) {
    a.push(time(before));
    b.push(time(after));
  } else {
    b.push(time(after));
    a.push(time(before));
  }
}
const [ma, mb] = [median(a.slice(4)), median(b.slice(4))]; // the first rounds warm the JIT up
console.log('| metric updates of one request (15 calls) | prom-client µs | relay families µs | ratio |');
console.log('| --- | --- | --- | --- |');
console.log(
  `| chat, two policies, keys on | ${ma.toFixed(2)} | ${mb.toFixed(2)} | ${(ma / mb).toFixed(1)}x |`,
);
console.log(
  `\nload average: ${(await import('node:os'))
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
