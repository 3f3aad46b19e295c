import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import { RedisConnection } from '../../redis/connection.ts';
import { readPodReports } from '../../redis/pod-reports.ts';
import { type CountingUpstream, type Fleet, startCountingUpstream, startFleet } from '../helpers/fleet.ts';
import { chat, configYaml, metric, post, startMocks } from '../helpers/harness.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

// Three relay processes sharing one redis-server, with upstreams behind them: limits, cooldowns
// and concurrency must hold for the fleet, not per pod.

const PERMIT_TTL_MS = 2000;

let redis: TestRedis;
let mocks: MockUpstream[];
let video: CountingUpstream;
let fleet: Fleet;
let runId = 0;

function fleetConfig(mainWeight = 1) {
  const [main, flaky, backup] = mocks;
  return configYaml(
    [
      {
        name: 'main',
        mock: main,
        weight: mainWeight,
        models: '[{ name: gpt-4o-mini }, { name: tok-model }, { name: strict-model }]',
      },
      {
        name: 'flaky',
        mock: flaky,
        models: '[{ name: cool-model }]',
        extra: '  cooldown: { failureThreshold: 3, duration: 60s }\n',
      },
      { name: 'backup', mock: backup, priority: 1, models: '[{ name: cool-model }]' },
      {
        name: 'video',
        baseURL: `${video.url}/v1`,
        models: '[{ name: video-model }]',
        extra: '  limits: { maxConcurrent: 1, maxQueue: 20, queueTimeout: 20s }\n',
      },
    ],
    `apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: per-tenant }
spec:
  match: { models: [gpt-4o-mini] }
  limitBy: header:x-tenant
  limits: [{ requests: 100, per: 1m }]
---
apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: tenant-tokens }
spec:
  match: { models: [tok-model] }
  limitBy: header:x-tenant
  limits: [{ tokens: 1000, per: 1m }]
---
apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: strict }
spec:
  match: { models: [strict-model] }
  limitBy: global
  limits: [{ requests: 100000, per: 1m }]
  onRedisUnavailable: deny
`,
  );
}

beforeAll(async () => {
  redis = await startRedis();
  mocks = await startMocks(['main', 'flaky', 'backup']);
  video = await startCountingUpstream(300);
  fleet = await startFleet(3, fleetConfig(), {
    REDIS_URL: redis.url,
    KUBERELAY_PERMIT_TTL_MS: String(PERMIT_TTL_MS),
    // Only pub/sub may spread cooldowns in these tests (the re-read and the reports read them too);
    // reports are then written at start and when the served config changes.
    KUBERELAY_STATE_REFRESH_MS: '600000',
    KUBERELAY_REPORT_INTERVAL_MS: '600000',
  });
});
afterAll(async () => {
  await fleet?.close();
  await video?.close();
  await Promise.all((mocks ?? []).map((m) => m.close()));
  await redis?.close();
});

const urls = () => fleet.pods.map((p) => p.url);

describe('a fleet of three relays sharing Redis', () => {
  it('a request limit hit from all three pods at once admits exactly the limit, run after run', async () => {
    const admittedPerRun: number[] = [];
    for (let run = 0; run < 5; run++) {
      const tenant = `tenant-${++runId}`;
      const before = mocks[0]!.stats().requests;
      const results = await Promise.all(
        Array.from({ length: 240 }, (_, i) =>
          post(urls()[i % 3]!, '/v1/chat/completions', chat(), { 'x-tenant': tenant }),
        ),
      );
      const ok = results.filter((r) => r.status === 200).length;
      admittedPerRun.push(ok);
      expect(results.filter((r) => r.status !== 200 && r.status !== 429)).toEqual([]);
      // Per-pod limits would have admitted all 240: each pod saw only 80.
      expect(ok).toBe(100);
      expect(mocks[0]!.stats().requests - before).toBe(100);
    }
    console.log(
      `request limit 100/min from 3 pods x 80 concurrent requests: admitted per run ${admittedPerRun.join(', ')}`,
    );
  });

  it('refusals are OpenAI-shaped 429s with Retry-After and the IETF RateLimit fields; admissions carry them too', async () => {
    const tenant = `tenant-${++runId}`;
    const first = await post(urls()[0]!, '/v1/chat/completions', chat(), { 'x-tenant': tenant });
    expect(first.status).toBe(200);
    expect(first.headers.get('ratelimit-policy')).toBe('"per-tenant";q=100;w=60');
    // t: seconds until the quota is whole again: a minute after the end of this 3 s slot.
    expect(first.headers.get('ratelimit')).toMatch(/^"per-tenant";r=99;t=(60|61|62|63)$/);
    for (let i = 0; i < 99; i++)
      await post(urls()[i % 3]!, '/v1/chat/completions', chat(), { 'x-tenant': tenant });
    const refused = await post(urls()[1]!, '/v1/chat/completions', chat(), { 'x-tenant': tenant });
    expect(refused.status).toBe(429);
    expect(refused.json.error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    expect(refused.json.error.message).toContain('100 requests per 1m by header:x-tenant');
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(63);
    expect(refused.headers.get('ratelimit-policy')).toBe('"per-tenant";q=100;w=60');
    expect(refused.headers.get('ratelimit')).toBe(`"per-tenant";r=0;t=${retryAfter}`);
    // Another tenant has its own bucket.
    expect(
      (await post(urls()[2]!, '/v1/chat/completions', chat(), { 'x-tenant': `other-${runId}` })).status,
    ).toBe(200);
    const decisions = await metric(urls()[1]!, 'kuberelay_ratelimit_decisions_total', {
      policy: 'default/per-tenant',
      decision: 'rejected',
    });
    expect(decisions).toBeGreaterThan(0);
  });

  it('a token limit never lets through more than the tokens reserved by requests in flight', async () => {
    const tenant = `tenant-${++runId}`;
    mocks[0]!.setFaults({ latencyMs: 300 }); // all of the first wave is in flight together
    let used = 0;
    let admitted = 0;
    try {
      const wave = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          post(urls()[i % 3]!, '/v1/chat/completions', chat({ model: 'tok-model', max_tokens: 50 }), {
            'x-tenant': tenant,
          }),
        ),
      );
      for (const r of wave) {
        expect([200, 429]).toContain(r.status);
        if (r.status === 200) {
          admitted++;
          used += r.json.usage.total_tokens;
        }
      }
    } finally {
      mocks[0]!.setFaults(null);
    }
    expect(admitted).toBeGreaterThan(0);
    expect(used).toBeLessThanOrEqual(1000);
    // Settling charged real usage (less than reserved), so more fits now; keep going until refused.
    let more = 0;
    for (let i = 0; i < 100; i++) {
      const r = await post(
        urls()[i % 3]!,
        '/v1/chat/completions',
        chat({ model: 'tok-model', max_tokens: 50 }),
        {
          'x-tenant': tenant,
        },
      );
      if (r.status === 429) break;
      more++;
      used += r.json.usage.total_tokens;
    }
    expect(more).toBeGreaterThan(0);
    expect(used).toBeLessThanOrEqual(1000);
    expect(used).toBeGreaterThan(1000 - 2 * 100); // and the budget was actually usable
    console.log(
      `token limit 1000/min: ${admitted} of 60 concurrent admitted on reservations, ${more} more after settling; ${used} tokens used`,
    );
  });

  it('a channel cooled down through pod A stops getting traffic from pods B and C', async () => {
    const [, flaky] = mocks;
    flaky!.setFaults({ status: 500 });
    flaky!.resetStats();
    let t0 = 0;
    for (let i = 0; i < 3; i++) {
      const r = await post(urls()[0]!, '/v1/chat/completions', chat({ model: 'cool-model' }));
      expect(r.headers.get('x-kuberelay-channel')).toBe('default/backup');
      t0 = performance.now();
    }
    expect(flaky!.stats().requests).toBe(3);
    const seenAt: number[] = [];
    for (const url of urls().slice(1)) {
      for (;;) {
        const cooling = await metric(url, 'kuberelay_channel_state', {
          channel: 'default/flaky',
          state: 'cooling_down',
        });
        if (cooling === 1) break;
        // Well under the 5 s re-read: this proves the pub/sub path, not a speed.
        if (performance.now() - t0 > 2000) throw new Error(`${url} did not hear of the cooldown`);
        await new Promise((r) => setTimeout(r, 2));
      }
      seenAt.push(performance.now() - t0);
    }
    for (let i = 0; i < 30; i++) {
      const r = await post(urls()[1 + (i % 2)]!, '/v1/chat/completions', chat({ model: 'cool-model' }));
      expect(r.headers.get('x-kuberelay-channel')).toBe('default/backup');
    }
    expect(flaky!.stats().requests).toBe(3);
    flaky!.setFaults(null);
    console.log(
      `cooldown reached through pod A seen by pods B and C after ${seenAt.map((ms) => ms.toFixed(1)).join(' ms, ')} ms (measured from the client's last response, polling /metrics)`,
    );
  });

  it('pods report the config they serve and per-channel stats to Redis, at once when the config changes', async () => {
    const conn = new RedisConnection({ url: redis.url });
    try {
      await conn.waitReady(5000);
      const reports = () => readPodReports(conn.client, conn.keys);
      const first = await reports();
      expect(first.map((r) => r.pod)).toEqual(['relay-0', 'relay-1', 'relay-2']);
      const oldHash = first[0]!.loadedHash;
      expect(oldHash).toMatch(/^[0-9a-f]{64}$/);
      expect(new Set(first.map((r) => r.loadedHash))).toEqual(new Set([oldHash]));

      // A config change (the pods follow the file) is reported without waiting for the interval.
      await writeFile(fleet.file, fleetConfig(2));
      await expect
        .poll(async () => new Set((await reports()).map((r) => r.loadedHash)), {
          timeout: 10_000,
          interval: 100,
        })
        .toEqual(new Set([expect.not.stringMatching(oldHash!)]));
      const a = (await reports())[0]!;
      expect(a.generation).toBe(2);
      expect(a.channels['default/flaky']).toMatchObject({
        requests5m: 3,
        errors5m: 3,
        consecutiveFailures: 3,
        lastError: { code: 'status_500', message: 'the upstream answered 500' },
        inflight: 0,
      });
      expect(a.channels['default/flaky']!.cooldownUntil).toBeGreaterThan(Date.now());
      expect(a.channels['default/main']!.p50LatencyMs).toBeGreaterThanOrEqual(0);
      expect(a.channels['default/main']!.requests5m).toBeGreaterThan(20);
    } finally {
      await conn.close();
    }
  });

  it('maxConcurrent: 1 holds across the fleet', async () => {
    const before = video.started();
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        post(urls()[i % 3]!, '/v1/chat/completions', chat({ model: 'video-model' })),
      ),
    );
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(video.started() - before).toBe(6);
    expect(video.maxInflight()).toBe(1);
  });

  it('kill -9 a pod holding the permit: the permit comes back within the permit TTL', async () => {
    video.hold(true);
    const holder = post(urls()[0]!, '/v1/chat/completions', chat({ model: 'video-model' })).catch(
      () => undefined,
    );
    await expect.poll(() => video.inflight()).toBe(1);
    const startedBefore = video.started();
    video.hold(false);
    const queued = post(urls()[1]!, '/v1/chat/completions', chat({ model: 'video-model' }));
    await new Promise((r) => setTimeout(r, 300));
    expect(video.started()).toBe(startedBefore); // waiting for the permit held by pod 0
    await fleet.kill(0);
    const killedAt = performance.now();
    await expect
      .poll(() => video.started(), { timeout: PERMIT_TTL_MS + 3000, interval: 10 })
      .toBe(startedBefore + 1);
    const waited = performance.now() - killedAt;
    expect((await queued).status).toBe(200);
    await holder;
    // The TTL, plus the queue's 250 ms poll and scheduling slack (without expiry: the 10 min timeout).
    expect(waited).toBeLessThanOrEqual(PERMIT_TTL_MS + 1000);
    console.log(
      `permit of a SIGKILLed pod came back after ${waited.toFixed(0)} ms (permit TTL ${PERMIT_TTL_MS} ms)`,
    );
    video.releaseAll();
    await fleet.restart(0);
  });
});

describe('Redis stopped and restarted under load', () => {
  it('keeps serving per onRedisUnavailable, reports it, and recovers by itself', async () => {
    const counts = { allow: new Map<number, number>(), deny: new Map<number, number>() };
    const now: { phase: 'before' | 'down' | 'after' } = { phase: 'before' };
    const byPhase = { before: [] as number[], down: [] as number[], after: [] as number[] };
    let stop = false;
    const load = (async () => {
      let i = 0;
      while (!stop) {
        const url = urls()[i % 3]!;
        const p = now.phase;
        const [a, d] = await Promise.all([
          post(url, '/v1/chat/completions', chat(), { 'x-tenant': `load-${i}` }),
          post(url, '/v1/chat/completions', chat({ model: 'strict-model' })),
        ]);
        counts.allow.set(a.status, (counts.allow.get(a.status) ?? 0) + 1);
        counts.deny.set(d.status, (counts.deny.get(d.status) ?? 0) + 1);
        byPhase[p].push(a.status, d.status);
        if (p === 'down') {
          expect(a.status).toBe(200); // onRedisUnavailable: allow
          if (d.status !== 200) {
            expect(d.status).toBe(503); // onRedisUnavailable: deny
            expect(d.json.error.code).toBe('rate_limit_unavailable');
          }
        }
        i++;
      }
    })();

    await new Promise((r) => setTimeout(r, 500));
    await redis.stop();
    now.phase = 'down';
    for (const url of urls()) {
      await expect.poll(() => metric(url, 'kuberelay_redis_up'), { timeout: 5000 }).toBe(0);
      const ready = await fetch(`${url}/readyz`);
      expect(ready.status).toBe(200); // degraded, still serving: not taken out of the Service
      expect(((await ready.json()) as { message: string }).message).toMatch(/degraded: redis unreachable/);
    }
    await new Promise((r) => setTimeout(r, 1000));
    await redis.start();
    for (const url of urls())
      await expect.poll(() => metric(url, 'kuberelay_redis_up'), { timeout: 10_000 }).toBe(1);
    now.phase = 'after';
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await load;

    expect(byPhase.down.length).toBeGreaterThan(10);
    expect(byPhase.down).toContain(503); // strict-model was denied while Redis was away
    expect(byPhase.after.length).toBeGreaterThan(4);
    expect(byPhase.after.every((s) => s === 200)).toBe(true); // and admitted again after

    // Shared state works again: a fresh request limit holds across the fleet.
    const tenant = `tenant-${++runId}`;
    const results = await Promise.all(
      Array.from({ length: 150 }, (_, i) =>
        post(urls()[i % 3]!, '/v1/chat/completions', chat(), { 'x-tenant': tenant }),
      ),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(100);
    // Cooldowns propagate again. The restarted Redis is empty, so pods forgot the earlier cooldown
    // of `flaky` on their first re-read; it cools down again through pod 0 and the others hear it.
    const [, flaky] = mocks;
    for (const url of urls()) {
      await expect
        .poll(() =>
          metric(url, 'kuberelay_channel_state', { channel: 'default/flaky', state: 'cooling_down' }),
        )
        .toBe(0);
      expect(await metric(url, 'kuberelay_redis_command_errors_total')).toBeGreaterThan(0);
    }
    flaky!.setFaults({ status: 500 });
    try {
      for (let i = 0; i < 3; i++)
        await post(urls()[0]!, '/v1/chat/completions', chat({ model: 'cool-model' }));
      for (const url of urls()) {
        await expect
          .poll(() =>
            metric(url, 'kuberelay_channel_state', { channel: 'default/flaky', state: 'cooling_down' }),
          )
          .toBe(1);
      }
    } finally {
      flaky!.setFaults(null);
    }
    for (const p of fleet.pods) {
      expect(p.proc.child.exitCode).toBeNull();
      expect(p.proc.output()).not.toMatch(/unhandled rejection|uncaught/i);
    }
    console.log(
      `redis outage under load: allow-policy statuses ${JSON.stringify(Object.fromEntries(counts.allow))}, deny-policy statuses ${JSON.stringify(Object.fromEntries(counts.deny))}`,
    );
  });
});
