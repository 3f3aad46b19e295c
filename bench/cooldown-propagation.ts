// Cooldown propagation across relay pods sharing Redis: after a channel enters cooldown through
// one pod, how long until the other pods stop sending to it.
//
//   npm run bench:redis                      both Redis benchmarks (this one and the limiter)
//   node bench/cooldown-propagation.ts [--trials N] [--store-trials N] [--json out.json]
//
// Three measurements:
// 1. Fleet (HTTP): three relay processes; the `flaky` channel answers one request with 429 and
//    Retry-After (a cooldown on the first failure); the client's request through pod A fails over
//    to `backup`. From the moment that response reaches the client, pods B and C are probed with
//    requests back to back until one is served by `backup`: until then they still send to `flaky`
//    (which answers those probes fine; a pod that has not heard of the failure has nothing to reset,
//    so the probes do not undo the cooldown). Resolution: one probe (~1-2 ms); the counts of probes
//    that still reached `flaky` are reported too.
// 2. Pub/sub delivery: the same events as received by a subscriber in this process, against the
//    Redis server time stamped into each event (same machine, same clock).
// 3. Store to store: two RedisStore instances in this process (separate connections); from
//    calling recordFailure() on A (one script round trip) to B's cooldown listener firing.

import { parseArgs } from 'node:util';
import { RedisConnection } from '../redis/connection.ts';
import { SCRIPTS } from '../redis/lua.ts';
import { RedisStore } from '../redis/state-store.ts';
import {
  config,
  machine,
  ms,
  type Proc,
  setFaults,
  startMock,
  startRedis,
  startRelay,
  stats,
  table,
  tempDir,
} from './redis-fleet.ts';

const { values: args } = parseArgs({
  options: {
    trials: { type: 'string', default: '30' },
    'store-trials': { type: 'string', default: '2000' },
    json: { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});
const quick = args.quick === true;
const TRIALS = quick ? 3 : Number(args.trials);
const STORE_TRIALS = quick ? 100 : Number(args['store-trials']);

const post = async (url: string) => {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 2,
    }),
  });
  await res.arrayBuffer();
  return res;
};

const probes: number[] = [];
/** True when the pod no longer sends to `flaky`. */
async function avoidsFlaky(url: string, timed = true): Promise<boolean> {
  const t0 = performance.now();
  const res = await post(url);
  if (timed) probes.push(performance.now() - t0);
  return res.headers.get('x-kuberelay-channel') === 'default/backup';
}

async function fleet(redisUrl: string) {
  const tmp = tempDir();
  const flaky = await startMock('flaky');
  const backup = await startMock('backup');
  const relays: Proc[] = [];
  const events = new RedisConnection({ url: redisUrl });
  const delivery: number[] = [];
  events.onMessage((m) => {
    const parts = m.split('|');
    // h|channel|failures|until|streak|version(µs, Redis TIME)
    if (parts[0] === 'h' && Number(parts[3]) > 0) {
      delivery.push(performance.timeOrigin + performance.now() - Number(parts[5]) / 1000);
    }
  });
  try {
    const file = tmp.write(
      'fleet.yaml',
      config([
        { name: 'flaky', baseURL: flaky.url },
        { name: 'backup', baseURL: backup.url, priority: 1 },
      ]),
    );
    for (let i = 0; i < 3; i++) relays.push(await startRelay(`pod-${i}`, file, { REDIS_URL: redisUrl }));
    await events.waitReady(5000);
    const [a, ...others] = relays;
    const seen: number[] = [];
    const worst: number[] = [];
    const leaked: number[] = [];
    for (let trial = 0; trial < TRIALS; trial++) {
      await setFaults(flaky, { status: 429, retryAfter: 1, count: 1 });
      const res = await post(a!.url);
      const t1 = performance.now();
      if (res.headers.get('x-kuberelay-channel') !== 'default/backup') throw new Error('expected a failover');
      const times = await Promise.all(
        others.map(async (p) => {
          let sent = 0;
          while (!(await avoidsFlaky(p.url))) {
            sent++;
            if (performance.now() - t1 > 10_000) throw new Error(`${p.name} never saw the cooldown`);
          }
          leaked.push(sent);
          return performance.now() - t1;
        }),
      );
      seen.push(...times);
      worst.push(Math.max(...times));
      // Let the 1 s cooldown end, then a success through pod A resets the channel for the next trial.
      await new Promise((r) => setTimeout(r, 1100));
      await setFaults(flaky, null);
      for (const p of relays)
        while (await avoidsFlaky(p.url, false)) await new Promise((r) => setTimeout(r, 20));
    }
    return {
      perPod: stats(seen),
      slowestPod: stats(worst),
      delivery: stats(delivery),
      probe: stats(probes),
      leaked: stats(leaked),
    };
  } finally {
    await events.close();
    await Promise.all(relays.map((r) => r.stop()));
    await flaky.stop();
    await backup.stop();
    tmp.remove();
  }
}

async function storeToStore(redisUrl: string) {
  const open = async () => {
    const connection = new RedisConnection({ url: redisUrl, prefix: 'bench-store:', scripts: SCRIPTS });
    await connection.waitReady(5000);
    return new RedisStore({ connection });
  };
  const a = await open();
  const b = await open();
  await new Promise((r) => setTimeout(r, 200)); // subscribers settle
  const policy = { failureThreshold: 1, durationMs: 60_000, maxDurationMs: 60_000 };
  const lat: number[] = [];
  try {
    for (let i = 0; i < STORE_TRIALS; i++) {
      const id = `ch-${i}`;
      b.cooldownUntil(id);
      const heard = new Promise<number>((resolve) => {
        const off = b.onCooldownChange((ch, until) => {
          if (ch === id && until > 0) {
            off();
            resolve(performance.now());
          }
        });
      });
      const t0 = performance.now();
      await a.recordFailure(id, policy);
      lat.push((await heard) - t0);
    }
  } finally {
    await a.close();
    await b.close();
  }
  return stats(lat);
}

async function main() {
  const startedAt = new Date().toISOString();
  const redis = await startRedis();
  try {
    const f = await fleet(redis.url);
    const s = await storeToStore(redis.url);
    const row = (name: string, x: ReturnType<typeof stats>) => [
      name,
      String(x.n),
      ms(x.p50),
      ms(x.p90),
      ms(x.p99),
      ms(x.max),
    ];
    const md = [
      `### Cooldown propagation (${startedAt}; ${machine()}; redis-server on the same machine)`,
      '',
      table(
        ['measured', 'samples', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
        [
          row(
            'fleet: client got pod A’s response -> pod B/C serve from backup (upper bound: one probe)',
            f.perPod,
          ),
          row('fleet: same, slower of the two pods per trial', f.slowestPod),
          row('pub/sub: Redis script ran -> subscriber received the event', f.delivery),
          row('store to store: recordFailure() called on A -> listener fired on B', s),
          row('(resolution of the fleet figures: one probe request)', f.probe),
          [
            'fleet: probes pod B/C still sent to the cooling channel per trial',
            String(f.leaked.n),
            String(f.leaked.p50),
            String(f.leaked.p90),
            String(f.leaked.p99),
            String(f.leaked.max),
          ],
        ],
      ),
    ].join('\n');
    console.log(md);
    if (args.json) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(
        args.json,
        JSON.stringify({ startedAt, machine: machine(), fleet: f, storeToStore: s }, null, 2),
      );
    }
  } finally {
    await redis.close();
  }
}

await main();
