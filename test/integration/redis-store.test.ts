import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnection } from '../../redis/connection.ts';
import { SCRIPTS } from '../../redis/lua.ts';
import { RedisStore, type RedisStoreOptions } from '../../redis/state-store.ts';
import { startRedis, type TestRedis, testPrefix } from '../helpers/redis.ts';

// What only a shared store does: several pods (here several stores in one process, each with its
// own connections) see one state, and each keeps serving from its local view when Redis is away.

let redis: TestRedis;
const open: RedisStore[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await redis?.close();
});

async function pods(n: number, opts: Partial<RedisStoreOptions> = {}): Promise<RedisStore[]> {
  const prefix = testPrefix('fleet');
  const stores: RedisStore[] = [];
  for (let i = 0; i < n; i++) {
    const connection = new RedisConnection({
      url: redis.url,
      prefix,
      scripts: SCRIPTS,
      commandTimeoutMs: 300,
    });
    expect(await connection.waitReady(5000)).toBe(true);
    const s = new RedisStore({ connection, ...opts });
    stores.push(s);
    open.push(s);
  }
  // Subscribers connect on their own; wait until each pod hears the events channel.
  await expect
    .poll(async () =>
      Number(
        await stores[0]!.connection.client
          .call('PUBSUB', 'NUMSUB', stores[0]!.connection.keys.events())
          .then((r) => (r as [string, number])[1]),
      ),
    )
    .toBeGreaterThanOrEqual(n);
  return stores;
}

const policy = { failureThreshold: 3, durationMs: 10_000, maxDurationMs: 60_000 };

describe('RedisStore across pods', () => {
  it('a cooldown reached through one pod reaches the others by pub/sub', async () => {
    const [a, b, c] = await pods(3);
    const seen: number[] = [];
    b!.cooldownUntil('ch'); // b serves this channel
    b!.onCooldownChange((_id, until) => seen.push(until));
    for (let i = 0; i < 3; i++) await a!.recordFailure('ch', policy);
    const until = a!.cooldownUntil('ch');
    expect(until).toBeGreaterThan(Date.now());
    await expect.poll(() => b!.cooldownUntil('ch')).toBe(until);
    await expect.poll(() => c!.cooldownUntil('ch')).toBe(until);
    expect(seen).toEqual([until]);
    // And leaving it: a success through c clears it everywhere.
    await c!.resetChannel('ch');
    await expect.poll(() => a!.cooldownUntil('ch')).toBe(0);
    await expect.poll(() => b!.cooldownUntil('ch')).toBe(0);
    expect(seen).toEqual([until, 0]);
  });

  it('consecutive failures are counted fleet-wide and a success anywhere resets them', async () => {
    const [a, b] = await pods(2);
    await a!.recordFailure('ch', policy);
    await b!.recordFailure('ch', policy);
    expect((await a!.channelHealth('ch')).consecutiveFailures).toBe(2);
    // b has heard of the failures (its local hint), so its success goes to Redis.
    await expect.poll(async () => (await b!.channelHealth('ch')).consecutiveFailures).toBe(2);
    await b!.recordSuccess('ch');
    await a!.recordFailure('ch', policy);
    await a!.recordFailure('ch', policy);
    expect(a!.cooldownUntil('ch')).toBe(0); // 2 since the success, not 4
  });

  it('permits are fleet-wide, and a release wakes waiters on other pods', async () => {
    const [a, b] = await pods(2);
    const woken: string[] = [];
    b!.onRelease((id) => woken.push(id));
    const lease = await a!.tryAcquire('video', 1, 60_000);
    expect(lease).not.toBeNull();
    expect(await b!.tryAcquire('video', 1, 60_000)).toBeNull();
    await a!.release(lease!);
    await expect.poll(() => woken).toContain('video');
    expect(await b!.tryAcquire('video', 1, 60_000)).not.toBeNull();
  });

  it('renews held permits, and a dead holder’s permit comes back within the permit TTL', async () => {
    const [a, b] = await pods(2, { permitTtlMs: 300 });
    expect(await a!.tryAcquire('video', 1, 60_000)).not.toBeNull();
    await new Promise((r) => setTimeout(r, 900)); // three TTLs: only renewal keeps it
    expect(await b!.tryAcquire('video', 1, 60_000)).toBeNull();
    // a dies without releasing (its keeper stops, like kill -9).
    await a!.close();
    open.splice(open.indexOf(a!), 1);
    const died = Date.now();
    let lease = null;
    while (!lease) {
      lease = await b!.tryAcquire('video', 1, 60_000);
      if (!lease) await new Promise((r) => setTimeout(r, 20));
    }
    expect(Date.now() - died).toBeLessThan(300 + 700); // the TTL plus scheduling slack, not the 60 s lease
  });

  it('a pod that starts later learns existing cooldowns on its first refresh', async () => {
    const [a] = await pods(1);
    for (let i = 0; i < 3; i++) await a!.recordFailure('ch', policy);
    const conn = new RedisConnection({ url: redis.url, prefix: a!.connection.keys.prefix, scripts: SCRIPTS });
    await conn.waitReady(5000);
    const joined = new RedisStore({ connection: conn });
    open.push(joined);
    expect(joined.cooldownUntil('ch')).toBe(0); // not read yet
    await joined.refresh();
    expect(joined.cooldownUntil('ch')).toBe(a!.cooldownUntil('ch'));
  });
});

describe('RedisStore when Redis goes away', () => {
  it('keeps serving from its local view, then resumes shared state after a restart', async () => {
    const [a, b] = await pods(2);
    const errors: string[] = [];
    a!.shared.onCommandError((op) => errors.push(op));
    await redis.kill();
    await expect.poll(() => a!.shared.up).toBe(false);
    expect(await a!.ping()).toBe(false);

    // Cooldowns: this pod still cools a failing channel down by itself.
    for (let i = 0; i < 3; i++) await a!.recordFailure('ch', policy);
    const localUntil = a!.cooldownUntil('ch');
    expect(localUntil).toBeGreaterThan(Date.now());
    // Permits: a per-pod gate with the same limit.
    const l1 = await a!.tryAcquire('video', 1, 60_000);
    expect(l1).not.toBeNull();
    expect(await a!.tryAcquire('video', 1, 60_000)).toBeNull();
    await a!.release(l1!);
    expect(await a!.tryAcquire('video', 1, 60_000)).not.toBeNull();
    // Usage: not written meanwhile (counted as a command error, no log line per request); reads fail.
    await a!.recordSpend({
      channelId: 'c',
      model: 'm',
      cost: 5,
      promptTokens: 1,
      completionTokens: 1,
      at: Date.now(),
    });
    expect(errors).toContain('krSpend');
    await expect(a!.spend('channel', 'c', 'day')).rejects.toThrow(/redis unavailable/);

    await redis.start();
    await expect.poll(() => a!.shared.up, { timeout: 10_000 }).toBe(true);
    await expect.poll(() => b!.shared.up, { timeout: 10_000 }).toBe(true);
    await a!.refresh();
    expect(a!.cooldownUntil('ch')).toBe(localUntil); // its own cooldown outlives the empty Redis
    await a!.recordSpend({
      channelId: 'c',
      model: 'm',
      cost: 1,
      promptTokens: 1,
      completionTokens: 1,
      at: Date.now(),
    });
    expect(await b!.spend('channel', 'c', 'day')).toBe(1);
    // Pub/sub works again too.
    for (let i = 0; i < 3; i++) await b!.recordFailure('other', policy);
    await expect.poll(() => a!.cooldownUntil('other'), { timeout: 5000 }).toBe(b!.cooldownUntil('other'));
  });

  it('fails fast instead of waiting when Redis hangs (paused), and recovers', async () => {
    const [a] = await pods(1);
    redis.pause();
    try {
      // The first calls wait for the command timeout; then the breaker answers at once.
      for (let i = 0; i < 2; i++) await a!.tryAcquire('video', 5, 60_000);
      expect(a!.shared.up).toBe(false);
      const t0 = performance.now();
      const lease = await a!.tryAcquire('video', 5, 60_000);
      expect(lease?.id).toMatch(/^local:/);
      expect(performance.now() - t0).toBeLessThan(250); // did not wait for another 300 ms timeout
    } finally {
      redis.resume();
    }
    await expect
      .poll(() => a!.tryAcquire('video', 5, 60_000).then((l) => l?.id ?? ''), { timeout: 5000 })
      .not.toMatch(/^local:/);
  });
});

describe('RedisStore: releases Redis did not hear', () => {
  it('a permit released while Redis hung is freed once Redis answers again, not a permit TTL later', async () => {
    const [a, b] = await pods(2); // permit TTL: the default 15 s
    const lease = await a!.tryAcquire('video', 1, 60_000);
    expect(lease).not.toBeNull();
    redis.pause();
    try {
      // Two timeouts open the breaker: the release is refused without reaching Redis.
      for (let i = 0; i < 2; i++) await a!.spend('channel', 'x', 'day').catch(() => {});
      expect(a!.shared.up).toBe(false);
      await a!.release(lease!);
    } finally {
      redis.resume();
    }
    const t0 = performance.now();
    await expect
      .poll(() => b!.tryAcquire('video', 1, 60_000).then((l) => l !== null), { timeout: 5000, interval: 100 })
      .toBe(true);
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});

describe('RedisStore: client-key change events', () => {
  it('a key change published by one pod reaches every other pod', async () => {
    const [a, b, c] = await pods(3);
    const heard: string[] = [];
    b!.onKeyChange((id) => heard.push(`b:${id}`));
    const off = c!.onKeyChange((id) => heard.push(`c:${id}`));
    await a!.publishKeyChange('key_123|odd');
    await expect.poll(() => heard.sort()).toEqual(['b:key_123|odd', 'c:key_123|odd']);
    off();
    await a!.publishKeyChange('key_456');
    await expect.poll(() => heard).toContain('b:key_456');
    expect(heard).not.toContain('c:key_456');
  });
});
