import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConcurrencyGate, type GateLimits } from '../../core/concurrency.ts';
import { MemoryStore } from '../../core/state/memory-store.ts';
import type { StateStore } from '../../core/state/store.ts';
import { RedisConnection } from '../../redis/connection.ts';
import { SCRIPTS } from '../../redis/lua.ts';
import { RedisStore } from '../../redis/state-store.ts';
import { startRedis, type TestRedis, testPrefix } from '../helpers/redis.ts';

// Channel permits (maxConcurrent) through the gate, on the in-process store and on real Redis:
// whatever requests do (wait, give up, leave, finish), no more than max are held at once and
// every permit comes back; and a running request keeps its permit through a Redis outage.

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.close();
});

async function redisStore(prefix: string, permitTtlMs = 15_000): Promise<RedisStore> {
  const connection = new RedisConnection({ url: redis.url, prefix, scripts: SCRIPTS, commandTimeoutMs: 300 });
  expect(await connection.waitReady(5000)).toBe(true);
  return new RedisStore({ connection, permitTtlMs });
}

describe('permits through a Redis outage', () => {
  it('a running request’s permit is re-created after Redis comes back empty, so no one else takes it', async () => {
    const prefix = testPrefix('outage');
    const [a, b] = [await redisStore(prefix, 600), await redisStore(prefix, 600)];
    try {
      const held = await a.tryAcquire('video', 1, 60_000);
      expect(held).not.toBeNull();
      expect(await b.tryAcquire('video', 1, 60_000)).toBeNull();

      await redis.stop(); // longer than the permit TTL, and it comes back without any data
      await new Promise((r) => setTimeout(r, 1200));
      await redis.start();
      await expect.poll(() => a.connection.up && b.connection.up, { timeout: 10_000 }).toBe(true);

      // The holder re-creates its permit on reconnecting; until then a trial permit is given back.
      await expect
        .poll(
          async () => {
            const trial = await b.tryAcquire('video', 1, 60_000);
            if (trial) await b.release(trial);
            return trial === null;
          },
          { timeout: 5000 },
        )
        .toBe(true);
      await a.release(held!);
      const next = await b.tryAcquire('video', 1, 60_000);
      expect(next).not.toBeNull(); // released for real: not re-created again
      await b.release(next!);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a permit taken while Redis was away is written to Redis when it is back, for as long as it runs', async () => {
    const prefix = testPrefix('local');
    const [a, b] = [await redisStore(prefix, 600), await redisStore(prefix, 600)];
    try {
      await redis.stop();
      await expect.poll(() => a.connection.up).toBe(false);
      const local = await a.tryAcquire('video', 1, 60_000); // per-pod gate meanwhile
      expect(local).not.toBeNull();
      await redis.start();
      await expect.poll(() => a.connection.up && b.connection.up, { timeout: 10_000 }).toBe(true);
      await expect
        .poll(
          async () => {
            const trial = await b.tryAcquire('video', 1, 60_000);
            if (trial) await b.release(trial);
            return trial === null;
          },
          { timeout: 5000 },
        )
        .toBe(true);
      await a.release(local!);
      const next = await b.tryAcquire('video', 1, 60_000);
      expect(next).not.toBeNull();
      await b.release(next!);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

const CHANNELS = ['a', 'b', 'c'];

const scenario = fc.record({
  max: fc.record({
    a: fc.integer({ min: 1, max: 3 }),
    b: fc.integer({ min: 1, max: 3 }),
    c: fc.integer({ min: 1, max: 3 }),
  }),
  maxQueue: fc.integer({ min: 0, max: 4 }),
  queueTimeoutMs: fc.integer({ min: 5, max: 60 }),
  requests: fc.array(
    fc.record({
      // The channels a request may use, in order of preference (a tier's peers).
      options: fc.subarray(CHANNELS, { minLength: 1 }),
      startMs: fc.integer({ min: 0, max: 40 }),
      holdMs: fc.integer({ min: 0, max: 25 }),
      // The client leaves after this long (never when undefined).
      leaveMs: fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined }),
    }),
    { minLength: 1, maxLength: 25 },
  ),
});

describe.each<[string, () => Promise<StateStore>]>([
  ['MemoryStore', async () => new MemoryStore()],
  ['RedisStore', () => redisStore(testPrefix('prop'))],
])('ConcurrencyGate on %s (property)', (_name, makeStore) => {
  it('never more than max permits held; every one returns; queues drain', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const store = await makeStore();
        const gate = new ConcurrencyGate(store, { pollMs: 10 });
        const held = new Map(CHANNELS.map((c) => [c, 0]));
        let overflow = '';
        const limitsOf = (c: string): GateLimits => ({
          maxConcurrent: s.max[c as 'a']!,
          maxQueue: s.maxQueue,
          queueTimeoutMs: s.queueTimeoutMs,
          leaseMs: 60_000,
        });
        const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
        const one = async (r: (typeof s.requests)[number]) => {
          await sleep(r.startMs);
          const client = new AbortController();
          const leave = r.leaveMs === undefined ? undefined : setTimeout(() => client.abort(), r.leaveMs);
          const options = r.options.map((c) => ({ channelId: c, limits: limitsOf(c) }));
          const got = await gate.acquireAny(options, { signal: client.signal });
          clearTimeout(leave);
          if (!got.ok) return;
          const c = got.lease.channelId;
          held.set(c, held.get(c)! + 1);
          if (held.get(c)! > s.max[c as 'a']!) overflow = `${c}: ${held.get(c)} held, max ${s.max[c as 'a']}`;
          await sleep(r.holdMs);
          held.set(c, held.get(c)! - 1);
          await gate.release(got.lease);
        };
        try {
          await Promise.all(s.requests.map(one));
          expect(overflow).toBe('');
          for (const c of CHANNELS) expect(gate.depth(c)).toBe(0);
          // Every permit is back: each channel hands out all of its max again.
          for (const c of CHANNELS) {
            const all = await Promise.all(
              Array.from({ length: s.max[c as 'a']! }, () => store.tryAcquire(c, s.max[c as 'a']!, 60_000)),
            );
            expect(all.every((l) => l !== null)).toBe(true);
            await Promise.all(all.map((l) => store.release(l!)));
          }
        } finally {
          gate.close();
          await store.close();
        }
      }),
      { numRuns: 25 },
    );
  }, 60_000);
});
