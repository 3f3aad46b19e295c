import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import { type RunningRelay, startRelay } from '../../relay/main.ts';
import { chat, configYaml, metric, post, startMocks } from '../helpers/harness.ts';
import { startRedis, type TestRedis, testPrefix } from '../helpers/redis.ts';

// A relay whose Redis is not there when it starts: it must start anyway, serve degraded, and
// take up shared state by itself once Redis appears.

describe('relay started while Redis is down', () => {
  let redis: TestRedis;
  let mocks: MockUpstream[];
  let relay: RunningRelay;
  let dir: string;

  beforeAll(async () => {
    redis = await startRedis();
    await redis.stop();
    mocks = await startMocks(['a']);
    dir = await mkdtemp(join(tmpdir(), 'kuberelay-test-'));
    const file = join(dir, 'config.yaml');
    await writeFile(
      file,
      configYaml(
        [{ name: 'a', mock: mocks[0] }],
        `apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: per-tenant }
spec:
  limitBy: header:x-tenant
  limits: [{ requests: 2, per: 1m }]
`,
      ),
    );
    relay = await startRelay({
      configFile: file,
      port: 0,
      host: '127.0.0.1',
      auth: 'none',
      logLevel: 'silent',
      shutdownTimeoutMs: 2000,
      shared: { redisUrl: redis.url, prefix: testPrefix('startup'), pod: 'lonely', reportIntervalMs: 200 },
    });
  });
  afterAll(async () => {
    await relay?.shutdown();
    await Promise.all((mocks ?? []).map((m) => m.close()));
    await redis?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves degraded: ready with a message, limits per onRedisUnavailable (allow)', async () => {
    const ready = await fetch(`${relay.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      status: 'ok',
      message: expect.stringMatching(/^degraded: redis/),
    });
    expect(await metric(relay.url, 'kuberelay_redis_up')).toBe(0);
    for (let i = 0; i < 4; i++) {
      expect((await post(relay.url, '/v1/chat/completions', chat(), { 'x-tenant': 't1' })).status).toBe(200);
    }
    expect(
      await metric(relay.url, 'kuberelay_ratelimit_decisions_total', { decision: 'unavailable_allowed' }),
    ).toBe(4);
  });

  it('connects when Redis appears, and shared limits apply from then on', async () => {
    await redis.start();
    await expect.poll(() => metric(relay.url, 'kuberelay_redis_up'), { timeout: 10_000 }).toBe(1);
    expect(await (await fetch(`${relay.url}/readyz`)).json()).toEqual({ status: 'ok' });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      statuses.push((await post(relay.url, '/v1/chat/completions', chat(), { 'x-tenant': 't2' })).status);
    }
    expect(statuses).toEqual([200, 200, 429, 429]);
    // And it reports itself for the operator.
    await expect
      .poll(() => relay.shared.connection!.client.keys('*{pods}*'), { timeout: 5000 })
      .not.toEqual([]);
  });
});
