import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type {
  Algorithm,
  LimitCheck,
  LimitDecision,
  Limiter,
  LimitKind,
} from '../../core/ratelimit/limiter.ts';
import { MemoryLimiter } from '../../core/ratelimit/memory-limiter.ts';
import { RedisConnection } from '../../redis/connection.ts';
import { RedisLimiter } from '../../redis/limiter.ts';
import { SCRIPTS } from '../../redis/lua.ts';
import { startRedis, startRedisCluster, type TestRedisDeployment, testPrefix } from '../helpers/redis.ts';

// One contract, two limiters: the in-process one and the Lua script must take the same decisions
// on the same clock, for every algorithm and kind; the script also on a Redis Cluster, where all
// of a request's buckets must share one slot.

const deployments: TestRedisDeployment[] = [];
const connections: Record<string, RedisConnection> = {};
beforeAll(async () => {
  deployments.push(...(await Promise.all([startRedis(), startRedisCluster()])));
  for (const [name, d] of [
    ['server', deployments[0]!],
    ['cluster', deployments[1]!],
  ] as const) {
    connections[name] = new RedisConnection({ url: d.url, prefix: testPrefix('limits'), scripts: SCRIPTS });
    expect(await connections[name].waitReady(5000)).toBe(true);
  }
});
afterAll(async () => {
  await Promise.all(Object.values(connections).map((c) => c.close()));
  await Promise.all(deployments.map((d) => d.close()));
});

interface Clock {
  now: number;
}

const IMPLEMENTATIONS: [string, (clock: Clock) => Limiter][] = [
  ['MemoryLimiter', (clock) => new MemoryLimiter({ now: () => clock.now })],
  ['RedisLimiter', (clock) => new RedisLimiter({ connection: connections.server!, clock: () => clock.now })],
  [
    'RedisLimiter on Redis Cluster',
    (clock) => new RedisLimiter({ connection: connections.cluster!, clock: () => clock.now }),
  ],
];

const MIN = 60_000;
// Windows and slots are aligned to multiples of their length on the store's clock. The clock
// starts off every boundary (a start on one hid over-admission at window edges); tests that need
// a position in a window say where, relative to the aligned T0.
const T0 = 36_000 * MIN; // a multiple of every slot and window length below
const OFFSET = 1_234;

describe.each(IMPLEMENTATIONS)('Limiter contract: %s', (_name, make) => {
  let limiter: Limiter;
  const clock: Clock = { now: 0 };
  afterEach(async () => {
    await limiter?.close();
  });
  const setup = (start = T0 + OFFSET) => {
    clock.now = start;
    limiter = make(clock);
  };
  const check = (
    kind: LimitKind,
    algorithm: Algorithm,
    amount: number,
    perMs: number,
    over: Partial<LimitCheck> = {},
  ) => ({
    key: `test:${randomUUID()}`,
    kind,
    algorithm,
    amount,
    perMs,
    reserve: kind === 'cost' ? 0 : 1,
    shadow: false,
    ...over,
  });
  const admitted = async (checks: LimitCheck[], n: number) => {
    let ok = 0;
    for (let i = 0; i < n; i++) if ((await limiter.check(checks)).allowed) ok++;
    return ok;
  };

  it('sliding window: admits exactly the amount, then says when the oldest slot frees up', async () => {
    setup();
    const c = check('requests', 'sliding-window', 5, MIN); // 20 slots of 3 s
    expect(await admitted([c], 3)).toBe(3);
    clock.now += 30_000;
    expect(await admitted([c], 5)).toBe(2);
    const d = await limiter.check([c]);
    expect(d.allowed).toBe(false);
    // The first three count until a minute after the end of their slot (T0 + 3 s).
    const frees = T0 + 3000 + MIN;
    expect(d.outcomes[0]).toEqual({ allowed: false, remaining: 0, resetMs: frees - clock.now });
    clock.now = frees - 1;
    expect((await limiter.check([c])).allowed).toBe(false);
    clock.now = frees;
    expect(await admitted([c], 5)).toBe(3); // the first three have left the window
  });

  it('sliding window never admits more than the amount within one period, at any window edge', async () => {
    // 180 per 3 min: 180 late in one slot, then 180 s later (171 s after the end of that slot).
    setup(T0 + 8_999);
    const c = check('requests', 'sliding-window', 180, 3 * MIN); // 20 slots of 9 s
    expect(await admitted([c], 181)).toBe(180);
    clock.now = T0 + 8_999 + 3 * MIN - 1;
    expect(await admitted([c], 1)).toBe(0);
    clock.now = T0 + 3 * MIN;
    expect(await admitted([c], 1)).toBe(0);
    clock.now = T0 + 9_000 + 3 * MIN - 1; // still within 3 min of the slot the 180 are known by
    expect(await admitted([c], 1)).toBe(0);
    clock.now = T0 + 9_000 + 3 * MIN;
    expect(await admitted([c], 181)).toBe(180);
  });

  it('sliding window does not reset at a boundary; a fixed window does', async () => {
    setup();
    const sliding = check('requests', 'sliding-window', 3, MIN);
    const fixed = check('requests', 'fixed-window', 3, MIN);
    clock.now = T0 + MIN - 1000; // late in the window
    expect(await admitted([sliding], 4)).toBe(3);
    expect(await admitted([fixed], 4)).toBe(3);
    const f = await limiter.check([fixed]);
    expect(f.outcomes[0]!.resetMs).toBe(1000);
    clock.now += 1000; // next fixed window
    expect(await admitted([fixed], 4)).toBe(3);
    expect(await admitted([sliding], 1)).toBe(0);
  });

  it('reports remaining quota and time to a full quota when admitting', async () => {
    setup();
    const c = check('requests', 'fixed-window', 10, MIN);
    clock.now = T0 + 15_000;
    const d = await limiter.check([c]);
    expect(d.outcomes[0]).toEqual({ allowed: true, remaining: 9, resetMs: 45_000 });
  });

  it('token bucket: a burst of the capacity, then one per refill interval', async () => {
    setup();
    const c = check('requests', 'token-bucket', 4, 1000); // refills one every 250 ms
    expect(await admitted([c], 6)).toBe(4);
    const d = await limiter.check([c]);
    expect(d.outcomes[0]!.allowed).toBe(false);
    expect(d.outcomes[0]!.resetMs).toBe(250);
    clock.now += 250;
    expect(await admitted([c], 2)).toBe(1);
    clock.now += 10_000; // refills to the capacity, no further
    expect(await admitted([c], 6)).toBe(4);
  });

  it('all or nothing: a rejection by one check takes nothing from the others', async () => {
    setup();
    const wide = check('requests', 'sliding-window', 10, MIN);
    const narrow = check('requests', 'fixed-window', 1, MIN);
    expect((await limiter.check([wide, narrow])).allowed).toBe(true);
    const d = await limiter.check([wide, narrow]);
    expect(d.allowed).toBe(false);
    expect(d.outcomes.map((o) => o.allowed)).toEqual([true, false]);
    expect((await limiter.check([wide])).outcomes[0]!.remaining).toBe(8); // 1 + this one, not 3
  });

  it('shadow checks count and report but never reject', async () => {
    setup();
    const shadow = check('requests', 'fixed-window', 1, MIN, { shadow: true });
    const real = check('requests', 'fixed-window', 100, MIN);
    expect((await limiter.check([shadow, real])).allowed).toBe(true);
    const d = await limiter.check([shadow, real]);
    expect(d.allowed).toBe(true);
    expect(d.outcomes.map((o) => o.allowed)).toEqual([false, true]);
  });

  it('tokens: reserve before, charge the real usage after (refund into the same window)', async () => {
    setup();
    const c = check('tokens', 'sliding-window', 100, MIN, { reserve: 60 });
    const first = await limiter.check([c]);
    expect(first.allowed).toBe(true);
    expect(first.outcomes[0]!.remaining).toBe(40);
    expect((await limiter.check([c])).allowed).toBe(false); // 60 + 60 > 100
    clock.now += 5000;
    await limiter.settle(first, [{ check: c, delta: 10 - 60 }]); // it used 10
    const second = await limiter.check([c]);
    expect(second.allowed).toBe(true);
    expect(second.outcomes[0]!.remaining).toBe(30);
    await limiter.settle(second, [{ check: c, delta: 95 - 60 }]); // it used 95: over, charged anyway
    const third = await limiter.check([{ ...c, reserve: 1 }]);
    expect(third.allowed).toBe(false);
    expect(third.outcomes[0]!.remaining).toBe(0);
  });

  it('cost: admitted while what is spent is under the budget, charged after', async () => {
    setup();
    const c = check('cost', 'fixed-window', 1, MIN);
    const a = await limiter.check([c]);
    await limiter.settle(a, [{ check: c, delta: 0.7 }]);
    const b = await limiter.check([c]);
    expect(b.allowed).toBe(true);
    expect(b.outcomes[0]!.remaining).toBeCloseTo(0.3, 9);
    await limiter.settle(b, [{ check: c, delta: 0.4 }]);
    const d = await limiter.check([c]);
    expect(d.allowed).toBe(false);
    expect(d.outcomes[0]!.resetMs).toBe(MIN - OFFSET); // the fixed window ends at T0 + 1 min
  });

  it('token bucket with usage: charges go into debt and refill over time', async () => {
    setup();
    const c = check('tokens', 'token-bucket', 1000, MIN, { reserve: 100 });
    const a = await limiter.check([c]);
    await limiter.settle(a, [{ check: c, delta: 1500 - 100 }]); // used 1500 of a 1000 bucket
    const d = await limiter.check([c]);
    expect(d.allowed).toBe(false);
    expect(d.outcomes[0]!.resetMs).toBe(36_000); // from -500 to +100 at 1000/min
  });

  it('concurrent: permits held until settle', async () => {
    setup();
    const c = check('concurrent', 'sliding-window', 2, 0);
    const a = await limiter.check([c]);
    const b = await limiter.check([c]);
    expect(a.allowed && b.allowed).toBe(true);
    expect(a.outcomes[0]!.remaining).toBe(1);
    expect((await limiter.check([c])).allowed).toBe(false);
    await limiter.settle(a, [{ check: c, delta: 0 }]);
    expect((await limiter.check([c])).allowed).toBe(true);
  });

  it('buckets are independent', async () => {
    setup();
    const a = check('requests', 'fixed-window', 1, MIN);
    const b = check('requests', 'fixed-window', 1, MIN);
    expect(await admitted([a], 2)).toBe(1);
    expect(await admitted([b], 2)).toBe(1);
  });
});

describe('the Lua script decides like the in-process limiter (property)', () => {
  it('same clock from any start, same arrivals and usage: the same outcomes, request by request', async () => {
    const arbitrary = fc.record({
      algorithm: fc.constantFrom<Algorithm>('sliding-window', 'fixed-window', 'token-bucket'),
      kind: fc.constantFrom<LimitKind>('requests', 'tokens', 'cost'),
      amount: fc.integer({ min: 1, max: 12 }),
      perMs: fc.integer({ min: 20, max: 100_000 }),
      start: fc.integer({ min: 0, max: 4_000_000_000_000 }),
      steps: fc.array(
        fc.record({
          gap: fc.integer({ min: 0, max: 600 }),
          burst: fc.integer({ min: 1, max: 4 }),
          // Tokens: reserved and then used; cost: charged in quarters of a dollar (exact in binary).
          reserve: fc.integer({ min: 1, max: 12 }),
          used: fc.integer({ min: 0, max: 24 }),
        }),
        { minLength: 1, maxLength: 25 },
      ),
    });
    await fc.assert(
      fc.asyncProperty(arbitrary, async (s) => {
        const clock: Clock = { now: s.start };
        const memory = new MemoryLimiter({ now: () => clock.now });
        const redis = new RedisLimiter({ connection: connections.server!, clock: () => clock.now });
        const key = `prop:${randomUUID()}`;
        let pending: { m: LimitDecision; r: LimitDecision; check: LimitCheck; delta: number }[] = [];
        try {
          for (const step of s.steps) {
            clock.now += Math.floor((step.gap * s.perMs) / 1000);
            // Last step's requests end now: real usage charged (or refunded) on both.
            for (const p of pending) {
              await memory.settle(p.m, [{ check: p.check, delta: p.delta }]);
              await redis.settle(p.r, [{ check: p.check, delta: p.delta }]);
            }
            pending = [];
            const reserve =
              s.kind === 'tokens' ? Math.min(step.reserve, s.amount) : s.kind === 'cost' ? 0 : 1;
            const c: LimitCheck = {
              key,
              kind: s.kind,
              algorithm: s.algorithm,
              amount: s.amount,
              perMs: s.perMs,
              reserve,
              shadow: false,
            };
            const delta = s.kind === 'tokens' ? step.used - reserve : s.kind === 'cost' ? step.used / 4 : 0;
            for (let i = 0; i < step.burst; i++) {
              const [m, r] = [await memory.check([c]), await redis.check([c])];
              expect(r.outcomes).toEqual(m.outcomes);
              expect(r.at).toBe(m.at);
              if (m.allowed && delta !== 0) pending.push({ m, r, check: c, delta });
            }
          }
        } finally {
          await Promise.all([memory.close(), redis.close()]);
        }
      }),
      { numRuns: 60 },
    );
  });
});
