import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnection } from '../../redis/connection.ts';
import { RedisLimiter } from '../../redis/limiter.ts';
import { SCRIPTS } from '../../redis/lua.ts';
import { startRedis, type TestRedis, testPrefix } from '../helpers/redis.ts';

// A relay under load blocks its event loop for longer than the Redis command timeout. Redis has
// long answered; the reply waits on the socket. That is not Redis being unavailable: the command
// must succeed, or the limiter fails open and a limit admits more than its amount. A Redis that
// really does not answer still times out within a bound.

const TIMEOUT_MS = 300;
let redis: TestRedis;
let conn: RedisConnection;

beforeAll(async () => {
  redis = await startRedis();
  conn = new RedisConnection({
    url: redis.url,
    prefix: testPrefix('deadline'),
    scripts: SCRIPTS,
    commandTimeoutMs: TIMEOUT_MS,
  });
  expect(await conn.waitReady(5000)).toBe(true);
});
afterAll(async () => {
  await conn?.close();
  await redis?.close();
});

/** Keeps the event loop busy, as a relay saturated by requests does. */
function blockLoop(ms: number) {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy
  }
}

/**
 * Blocks the loop for `ms` right after the client's next write to Redis: the reply then arrives
 * while the loop is busy, as it does in a relay saturated by requests.
 */
function blockAfterNextWrite(ms: number) {
  const stream = (conn.client as unknown as { stream: { write: (...a: unknown[]) => boolean } }).stream;
  const write = stream.write;
  stream.write = function (this: unknown, ...args: unknown[]) {
    stream.write = write;
    const r = write.apply(this, args);
    blockLoop(ms);
    return r;
  };
}

describe('Redis command deadline', () => {
  it('a reply that arrived while the event loop was blocked is not a timeout', async () => {
    for (const blockMs of [TIMEOUT_MS + 50, 2 * TIMEOUT_MS, 4 * TIMEOUT_MS]) {
      blockAfterNextWrite(blockMs);
      const reply = conn.run('ping', (c) => c.ping());
      await expect(reply).resolves.toBe('PONG');
    }
  });

  it('a limit checked while the loop is blocked admits exactly its amount', async () => {
    const limiter = new RedisLimiter({ connection: conn });
    const check = {
      key: `blocked-${Date.now()}`,
      kind: 'requests' as const,
      algorithm: 'sliding-window' as const,
      amount: 5,
      perMs: 60_000,
      reserve: 1,
      shadow: false,
    };
    const decisions: Promise<boolean>[] = [];
    blockAfterNextWrite(2 * TIMEOUT_MS);
    for (let i = 0; i < 8; i++) {
      decisions.push(
        limiter.check([check]).then(
          (d) => d.allowed,
          () => 'error' as never,
        ),
      );
    }
    expect(await Promise.all(decisions)).toEqual([true, true, true, true, true, false, false, false]);
  });

  it('a Redis that does not answer (SIGSTOP) times out within a bound', async () => {
    redis.pause();
    try {
      const t0 = performance.now();
      await expect(conn.run('ping', (c) => c.ping())).rejects.toThrow(/timed out/);
      const took = performance.now() - t0;
      expect(took).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
      expect(took).toBeLessThan(4 * TIMEOUT_MS);
    } finally {
      redis.resume();
    }
    await expect
      .poll(() => conn.run('ping', (c) => c.ping()).catch(() => 'down'), { timeout: 5000 })
      .toBe('PONG');
  });
});
