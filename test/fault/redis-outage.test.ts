import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  call,
  expectSettled,
  isOpenAIError,
  metric,
  type RelayProc,
  startRelayProc,
  startUpstream,
  type Upstream,
  until,
} from '../helpers/fault-rig.ts';
import { configYaml } from '../helpers/harness.ts';
import { type Postgres, startPostgres } from '../helpers/postgres.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

/**
 * Redis SIGKILLed under load and started again (empty, as a restarted pod without persistence
 * is), then SIGSTOPped (a Redis that holds its connections but answers nothing): the relay keeps serving per each policy's onRedisUnavailable, reports the outage through
 * `kuberelay_redis_up` and /readyz, and recovers by itself; no request waits past a bound, and
 * afterwards no permit is left held.
 */

const PERMITS = 8;
const WORKERS = 4; // each holds at most one permit plus one being returned: never more than PERMITS
const REQUEST_BOUND_MS = 5000;
const PERMIT_TTL_MS = 15_000; // KUBERELAY_PERMIT_TTL_MS default

describe('Redis killed and restarted under load', () => {
  let pg: Postgres;
  let redis: TestRedis;
  let up: Upstream;
  let relay: RelayProc;
  let secret: string;

  beforeAll(async () => {
    // The servers first: a Node process starting alongside would slow them past their start bound.
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    up = await startUpstream('main');
    const yaml = configYaml(
      [
        {
          name: 'main',
          baseURL: `${up.url}/v1`,
          models:
            '[{ name: gpt-4o-mini, pricing: { inputPer1M: "1", outputPer1M: "2" } }, { name: strict-model }]',
          extra: `  limits: { maxConcurrent: ${PERMITS}, maxQueue: 0 }\n`,
        },
      ],
      `apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: lenient }
spec:
  match: { models: [gpt-4o-mini] }
  limitBy: apiKey
  limits: [{ requests: 1000000, per: 1m }, { concurrent: ${PERMITS} }]
  onRedisUnavailable: allow
---
apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: strict }
spec:
  match: { models: [strict-model] }
  limitBy: apiKey
  limits: [{ requests: 1000000, per: 1m }]
  onRedisUnavailable: deny
`,
    );
    relay = await startRelayProc({
      yaml,
      databaseUrl: await pg.createDatabase('redis_outage'),
      redisUrl: redis.url,
    });
    ({ secret } = await relay.createKey());
  });
  afterAll(async () => {
    await relay?.stop();
    await up?.stop();
    await redis?.close();
    await pg?.close();
  });

  const chat = (model: string, stream: boolean) =>
    call(`${relay.url}/v1/chat/completions`, {
      headers: { authorization: `Bearer ${secret}` },
      body: { model, messages: [{ role: 'user', content: 'through an outage' }], max_tokens: 8, stream },
      timeoutMs: REQUEST_BOUND_MS + 10_000,
    });

  /** Load on the lenient model until stopped: WORKERS loops, streams and non-streams. */
  const startLoad = () => {
    let running = true;
    const statuses: Record<number, number> = {};
    let slowest = 0;
    let served = 0;
    const workers = Array.from({ length: WORKERS }, async (_, w) => {
      for (let i = 0; running; i++) {
        const r = await chat('gpt-4o-mini', (i + w) % 2 === 0);
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        slowest = Math.max(slowest, r.ms);
        if (r.status === 200) served++;
      }
    });
    return {
      async servedSince(n: number) {
        const from = served;
        await until(`${n} more requests served`, async () => served - from >= n, 20_000);
      },
      async stop() {
        running = false;
        await Promise.all(workers);
        return { statuses, slowest, served };
      },
    };
  };

  const expectDenied = async () => {
    const denied = await chat('strict-model', false);
    expect(denied.status).toBe(503);
    expect(isOpenAIError(denied.json)).toBe(true);
    expect((denied.json as { error: { code: string } }).error.code).toBe('rate_limit_unavailable');
    expect(denied.headers.get('retry-after')).toBe('1');
    expect(denied.ms).toBeLessThan(REQUEST_BOUND_MS);
  };

  /**
   * Nothing left behind: gauges at 0, and all permits (channel and policy) free again — at once,
   * or at worst within the permit TTL (what the design promises even for a pod that died).
   */
  const expectNothingLeft = async () => {
    await expectSettled(relay.url);
    await up.setFaults({ latencyMs: 400 });
    let last: number[] = [];
    try {
      await until(
        `all ${PERMITS} permits free within the permit TTL`,
        async () => {
          const probe = await Promise.all(Array.from({ length: PERMITS }, () => chat('gpt-4o-mini', false)));
          last = probe.map((r) => r.status);
          return last.every((st) => st === 200);
        },
        PERMIT_TTL_MS + 5000,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; last probe: ${last.join(',')}`);
    } finally {
      await up.setFaults(null);
    }
    await expectSettled(relay.url);
    expect(relay.proc.child.exitCode).toBeNull();
    expect(relay.proc.output()).not.toMatch(/unhandled rejection|uncaught/i);
  };

  it('SIGKILL: serves per onRedisUnavailable, reports it, and recovers by itself', async () => {
    expect(await metric(relay.url, 'kuberelay_redis_up')).toBe(1);
    expect((await chat('strict-model', false)).status).toBe(200);
    const load = startLoad();
    try {
      await load.servedSince(20);
      await redis.kill();
      await until(
        'kuberelay_redis_up to drop to 0',
        async () => (await metric(relay.url, 'kuberelay_redis_up')) === 0,
      );
      await load.servedSince(20);
      const ready = await call(`${relay.url}/readyz`);
      expect(ready.status).toBe(200); // degraded, not unready: that would drain every replica at once
      expect((ready.json as { message?: string }).message).toMatch(/redis/i);
      await expectDenied();

      await redis.start();
      await until(
        'kuberelay_redis_up back to 1',
        async () => (await metric(relay.url, 'kuberelay_redis_up')) === 1,
        20_000,
      );
      await load.servedSince(20);
      await until(
        'the deny policy to admit again',
        async () => (await chat('strict-model', false)).status === 200,
      );
    } finally {
      const { statuses, slowest, served } = await load.stop();
      expect(statuses).toEqual({ 200: served });
      expect(slowest).toBeLessThan(REQUEST_BOUND_MS);
    }
    await expectNothingLeft();
  });

  it('SIGSTOP (connected, never answering): no request waits past the bound, and it recovers', async () => {
    await until(
      'kuberelay_redis_up at 1',
      async () => (await metric(relay.url, 'kuberelay_redis_up')) === 1,
      20_000,
    );
    const load = startLoad();
    try {
      await load.servedSince(20);
      redis.pause();
      try {
        await until(
          'kuberelay_redis_up to drop to 0',
          async () => (await metric(relay.url, 'kuberelay_redis_up')) === 0,
        );
        await load.servedSince(20);
        await expectDenied();
      } finally {
        redis.resume();
      }
      await until(
        'kuberelay_redis_up back to 1',
        async () => (await metric(relay.url, 'kuberelay_redis_up')) === 1,
        20_000,
      );
      await load.servedSince(20);
      await until(
        'the deny policy to admit again',
        async () => (await chat('strict-model', false)).status === 200,
      );
    } finally {
      const { statuses, slowest, served } = await load.stop();
      expect(statuses).toEqual({ 200: served });
      expect(slowest).toBeLessThan(REQUEST_BOUND_MS);
    }
    await expectNothingLeft();
  });
});
