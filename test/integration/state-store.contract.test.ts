import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HEALTHY } from '../../core/cooldown.ts';
import { MemoryStore } from '../../core/state/memory-store.ts';
import type { StateStore } from '../../core/state/store.ts';
import { RedisConnection } from '../../redis/connection.ts';
import { SCRIPTS } from '../../redis/lua.ts';
import { RedisStore } from '../../redis/state-store.ts';
import {
  startRedis,
  startRedisCluster,
  startRedisSentinel,
  type TestRedisDeployment,
  testPrefix,
} from '../helpers/redis.ts';

// One contract, two implementations: the in-process store and the Redis store must behave the
// same for everything the relay relies on. Both run against the same controllable clock. The
// Redis store runs against one server, a Redis Cluster (every script must stay on one slot) and
// a Sentinel-watched master.

const deployments: Record<string, TestRedisDeployment> = {};
beforeAll(async () => {
  [deployments.server, deployments.cluster, deployments.sentinel] = await Promise.all([
    startRedis(),
    startRedisCluster(),
    startRedisSentinel(),
  ]);
});
afterAll(async () => {
  await Promise.all(Object.values(deployments).map((d) => d.close()));
});

interface Clock {
  now: number;
}

const redisStore = (deployment: string) => async (clock: Clock) => {
  const connection = new RedisConnection({
    url: deployments[deployment]!.url,
    prefix: testPrefix('store'),
    scripts: SCRIPTS,
  });
  expect(await connection.waitReady(5000)).toBe(true);
  return new RedisStore({ connection, now: () => clock.now });
};

const IMPLEMENTATIONS: [string, (clock: Clock) => Promise<StateStore>][] = [
  ['MemoryStore', async (clock) => new MemoryStore({ now: () => clock.now })],
  ['RedisStore', redisStore('server')],
  ['RedisStore on Redis Cluster', redisStore('cluster')],
  ['RedisStore through Sentinel', redisStore('sentinel')],
];

const policy = { failureThreshold: 3, durationMs: 10_000, maxDurationMs: 35_000 };

describe.each(IMPLEMENTATIONS)('StateStore contract: %s', (_name, make) => {
  let store: StateStore;
  let clock: Clock;
  const open = async (start = 1_000_000) => {
    clock = { now: start };
    store = await make(clock);
    return store;
  };
  afterEach(async () => {
    await store?.close();
  });

  it('cools down at the threshold, ignores failures during it, and notifies once', async () => {
    await open();
    const events: [string, number][] = [];
    store.onCooldownChange((id, until) => events.push([id, until]));
    expect(await store.recordFailure('ch', policy)).toEqual({
      consecutiveFailures: 1,
      cooldownUntil: 0,
      streak: 0,
      cooldownSince: 0,
      restUntil: 0,
    });
    await store.recordFailure('ch', policy);
    expect(store.cooldownUntil('ch')).toBe(0);
    const h = await store.recordFailure('ch', policy);
    expect(h).toEqual({
      consecutiveFailures: 3,
      cooldownUntil: clock.now + 10_000,
      streak: 1,
      cooldownSince: clock.now,
      restUntil: 0,
    });
    expect(store.cooldownUntil('ch')).toBe(clock.now + 10_000);
    clock.now += 1000;
    expect(await store.recordFailure('ch', policy)).toEqual(h); // started before the cooldown
    expect(await store.channelHealth('ch')).toEqual(h);
    expect(events).toEqual([['ch', h.cooldownUntil]]);
  });

  it('a success resets the streak; the next failure counts from one', async () => {
    await open();
    await store.recordFailure('ch', policy);
    await store.recordFailure('ch', policy);
    await store.recordSuccess('ch');
    expect(await store.channelHealth('ch')).toEqual(HEALTHY);
    await store.recordFailure('ch', policy);
    await store.recordFailure('ch', policy);
    expect(store.cooldownUntil('ch')).toBe(0);
    expect((await store.channelHealth('ch')).consecutiveFailures).toBe(2);
  });

  it('probation: after a cooldown one failure re-opens it, backing off up to maxDuration', async () => {
    await open(0);
    for (let i = 0; i < 3; i++) await store.recordFailure('ch', policy);
    expect(store.cooldownUntil('ch')).toBe(10_000);
    clock.now = 10_000;
    expect((await store.recordFailure('ch', policy)).cooldownUntil).toBe(30_000);
    clock.now = 30_000;
    expect((await store.recordFailure('ch', policy)).cooldownUntil).toBe(65_000); // 40 s capped at 35 s
    clock.now = 70_000;
    await store.recordSuccess('ch');
    expect(await store.channelHealth('ch')).toEqual(HEALTHY);
  });

  it('honours Retry-After below the threshold, capped at maxDuration', async () => {
    await open();
    expect((await store.recordFailure('a', policy, 2000)).cooldownUntil).toBe(clock.now + 2000);
    expect((await store.recordFailure('b', policy, 3_600_000)).cooldownUntil).toBe(clock.now + 35_000);
  });

  it('notifies leaving a cooldown on success and on reset', async () => {
    await open();
    const events: [string, number][] = [];
    store.onCooldownChange((id, until) => events.push([id, until]));
    for (let i = 0; i < 3; i++) await store.recordFailure('x', policy);
    const sent = clock.now + 1; // a probe sent during the cooldown came back fine
    clock.now += 2;
    await store.recordSuccess('x', sent);
    expect(store.cooldownUntil('x')).toBe(0);
    await store.recordFailure('y', policy, 5000);
    await store.resetChannel('y');
    expect(store.cooldownUntil('y')).toBe(0);
    expect(events).toEqual([
      ['x', clock.now - 2 + 10_000],
      ['x', 0],
      ['y', clock.now + 5000],
      ['y', 0],
    ]);
  });

  it('a success sent before the cooldown began does not end it; none shortens a Retry-After rest', async () => {
    await open();
    const sent = clock.now; // a long stream sent before the failures
    clock.now += 100;
    for (let i = 0; i < 3; i++) await store.recordFailure('x', policy);
    clock.now += 100;
    await store.recordSuccess('x', sent);
    expect(store.cooldownUntil('x')).toBe(clock.now - 100 + 10_000);
    expect((await store.channelHealth('x')).cooldownUntil).toBe(clock.now - 100 + 10_000);

    const rest = await store.recordFailure('y', policy, 5000);
    clock.now += 100;
    await store.recordSuccess('y', clock.now - 50); // sent after the rest began, still no shortening
    expect(store.cooldownUntil('y')).toBe(rest.cooldownUntil);
    const h = await store.channelHealth('y');
    expect(h.cooldownUntil).toBe(rest.cooldownUntil);
    expect(h.consecutiveFailures).toBe(0);
    clock.now = rest.cooldownUntil + 1;
    await store.recordSuccess('y', clock.now);
    expect(await store.channelHealth('y')).toEqual(HEALTHY);
  });

  it('hands out at most max permits; a released or expired permit comes back', async () => {
    await open();
    const released: string[] = [];
    store.onRelease((id) => released.push(id));
    const a = await store.tryAcquire('ch', 2, 1000);
    const b = await store.tryAcquire('ch', 2, 1000);
    expect(a).not.toBeNull();
    expect(b).not.toBeNull();
    expect(await store.tryAcquire('ch', 2, 1000)).toBeNull();
    expect(await store.tryAcquire('other', 2, 1000)).not.toBeNull(); // per channel
    await store.release(a!);
    await expect.poll(() => released).toContain('ch');
    const c = await store.tryAcquire('ch', 2, 1000);
    expect(c).not.toBeNull();
    expect(await store.tryAcquire('ch', 2, 1000)).toBeNull();
    clock.now += 1001; // b and c expire
    expect(await store.tryAcquire('ch', 2, 1000)).not.toBeNull();
    expect(await store.tryAcquire('ch', 2, 1000)).not.toBeNull();
    expect(await store.tryAcquire('ch', 2, 1000)).toBeNull();
  });

  it('counts usage per channel and key, per UTC day and month', async () => {
    await open();
    const at = Date.parse('2026-11-30T23:59:00Z');
    const rec = { model: 'm', promptTokens: 10, completionTokens: 5 };
    await store.recordSpend({ ...rec, channelId: 'c', keyId: 'k', cost: 0.5, at });
    await store.recordSpend({ ...rec, channelId: 'c', cost: 0.25, at: at + 120_000 }); // next day and month
    await store.recordSpend({ ...rec, channelId: 'c', keyId: 'k', cost: 0, at }); // free: still a request
    expect(await store.spend('channel', 'c', 'day', at)).toBeCloseTo(0.5, 12);
    expect(await store.spend('channel', 'c', 'month', at)).toBeCloseTo(0.5, 12);
    expect(await store.spend('channel', 'c', 'month', at + 120_000)).toBeCloseTo(0.25, 12);
    expect(await store.spend('key', 'k', 'day', at)).toBeCloseTo(0.5, 12);
    expect(await store.spend('key', 'nobody', 'day', at)).toBe(0);
    expect(await store.usage('channel', 'c', 'day', at)).toEqual({
      cost: 0.5,
      requests: 2,
      promptTokens: 20,
      completionTokens: 10,
    });
    expect(await store.usage('key', 'k', 'month', at)).toMatchObject({ requests: 2, promptTokens: 20 });
  });

  it('keeps sub-micro-dollar costs (one token at $0.15 per million)', async () => {
    await open();
    const at = Date.parse('2026-01-15T12:00:00Z');
    for (let i = 0; i < 100; i++) {
      await store.recordSpend({
        channelId: 'c',
        model: 'm',
        cost: 1.5e-7,
        promptTokens: 1,
        completionTokens: 0,
        at,
      });
    }
    expect(await store.spend('channel', 'c', 'day', at)).toBeCloseTo(1.5e-5, 15);
  });

  it('reports itself usable', async () => {
    await open();
    expect(await store.ping()).toBe(true);
  });
});
