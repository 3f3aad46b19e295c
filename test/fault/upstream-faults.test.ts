import { APIError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  call,
  expectSettled,
  isOpenAIError,
  metric,
  type RelayProc,
  sseData,
  startRelayProc,
  startUpstream,
  type Upstream,
  until,
} from '../helpers/fault-rig.ts';
import { configYaml } from '../helpers/harness.ts';
import { type Postgres, startPostgres } from '../helpers/postgres.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

/**
 * Every fault `kuberelay mock-upstream` can inject, against a relay process on PostgreSQL and
 * Redis with the chart's environment. Each fault must end in bounded time with an answer in
 * OpenAI's error shape (or an error event on a stream that had started), and leave nothing
 * behind: no request in flight or queued, every permit back, every request in the usage rollups.
 */

const FIRST_BYTE_MS = 1500;
// A fault answered within this, whatever the fault (one attempt's first-byte timeout plus slack
// for a loaded machine).
const BOUND_MS = FIRST_BYTE_MS + 6000;
const MAX_CONCURRENT = 4;

const solo = (name: string) => ({
  model: 'solo-model',
  messages: [{ role: 'user' as const, content: `fault ${name}` }],
  max_tokens: 8,
});

describe('upstream faults', () => {
  let pg: Postgres;
  let redis: TestRedis;
  let soloUp: Upstream;
  let primary: Upstream;
  let fallback: Upstream;
  let relay: RelayProc;
  let secret: string;
  let keyId: string;
  let sent = 0;

  const limits = `  limits: { maxConcurrent: ${MAX_CONCURRENT}, maxQueue: 0 }
  timeouts: { connect: 2s, firstByte: ${FIRST_BYTE_MS}ms, total: 20s }`;

  beforeAll(async () => {
    // The servers first: Node processes starting alongside would slow them past their start bound.
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    [soloUp, primary, fallback] = await Promise.all([
      startUpstream('solo'),
      startUpstream('primary'),
      startUpstream('fallback'),
    ]);
    const pricing = '{ inputPer1M: "1", outputPer1M: "2" }';
    const yaml = configYaml(
      [
        {
          name: 'solo',
          baseURL: `${soloUp.url}/v1`,
          models: `[{ name: solo-model, pricing: ${pricing} }]`,
          // A high threshold: the status faults below must not cool the only channel down.
          extra: `${limits}\n  cooldown: { failureThreshold: 1000 }\n`,
        },
        {
          name: 'primary',
          baseURL: `${primary.url}/v1`,
          models: `[{ name: pair-model, pricing: ${pricing} }]`,
          extra: `${limits}\n`,
        },
        {
          name: 'fallback',
          baseURL: `${fallback.url}/v1`,
          priority: 1,
          models: `[{ name: pair-model, pricing: ${pricing} }]`,
          extra: `${limits}\n`,
        },
      ],
      `apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: solo-concurrency }
spec:
  match: { models: [solo-model] }
  limitBy: global
  limits: [{ concurrent: ${MAX_CONCURRENT} }]
`,
    );
    relay = await startRelayProc({
      yaml,
      databaseUrl: await pg.createDatabase('faults'),
      redisUrl: redis.url,
    });
    ({ id: keyId, secret } = await relay.createKey());
  });

  afterAll(async () => {
    await relay?.stop();
    await Promise.all([soloUp, primary, fallback].map((u) => u?.stop()));
    await redis?.close();
    await pg?.close();
  });

  const chatRaw = (body: unknown) => {
    sent++;
    return call(`${relay.url}/v1/chat/completions`, {
      headers: { authorization: `Bearer ${secret}` },
      body,
      timeoutMs: BOUND_MS + 10_000,
    });
  };

  /** Exactly MAX_CONCURRENT slow requests at once: all admitted only if no permit leaked. */
  const expectPermitsFree = async () => {
    await expectSettled(relay.url);
    await soloUp.setFaults({ latencyMs: 400 });
    try {
      const res = await Promise.all(
        Array.from({ length: MAX_CONCURRENT }, (_, i) => chatRaw(solo(`probe ${i}`))),
      );
      expect(res.map((r) => r.status)).toEqual(Array(MAX_CONCURRENT).fill(200));
    } finally {
      await soloUp.setFaults(null);
    }
    await expectSettled(relay.url);
  };

  it('serves and frees its permits before any fault (the probe itself works)', async () => {
    await expectPermitsFree();
    // One more than the permits: no queue, so one is refused in shape (by the policy's 429 or the
    // channel's 503, whichever gate it meets first).
    await soloUp.setFaults({ latencyMs: 400 });
    const res = await Promise.all(Array.from({ length: MAX_CONCURRENT + 1 }, () => chatRaw(solo('over'))));
    await soloUp.setFaults(null);
    const refused = res.filter((r) => r.status !== 200);
    expect(refused).toHaveLength(1);
    expect([429, 503]).toContain(refused[0]!.status);
    expect(isOpenAIError(refused[0]!.json)).toBe(true);
    await expectSettled(relay.url);
  });

  it.each([400, 401, 403, 404, 408, 429, 500, 502, 503, 504])(
    'upstream status %i: an OpenAI-shaped error in bounded time, nothing left behind',
    async (status) => {
      await soloUp.setFaults({ status });
      const t0 = performance.now();
      const client = relay.client(secret, { timeoutMs: BOUND_MS });
      sent++;
      const err = await client.chat.completions.create(solo(`status ${status}`)).catch((e: unknown) => e);
      expect(performance.now() - t0).toBeLessThan(BOUND_MS);
      await soloUp.setFaults(null);
      expect(err).toBeInstanceOf(APIError);
      const e = err as APIError;
      expect(isOpenAIError({ error: e.error })).toBe(true);
      // A client error the upstream saw in the request is the client's; the channel's own
      // trouble (credentials, overload, outage) is the relay's 5xx; a rate limit stays a 429.
      if (status === 400 || status === 404) expect(e.status).toBe(status);
      else if (status === 429) {
        expect(e.status).toBe(429);
        expect(Number(e.headers?.get('retry-after'))).toBeGreaterThanOrEqual(1);
      } else expect(e.status).toBeGreaterThanOrEqual(500);
      await expectSettled(relay.url);
    },
  );

  it('connection reset before an answer: a 502 in shape', async () => {
    await soloUp.setFaults({ reset: true });
    const r = await chatRaw(solo('reset'));
    await soloUp.setFaults(null);
    expect(r.status).toBe(502);
    expect(isOpenAIError(r.json)).toBe(true);
    expect(r.ms).toBeLessThan(BOUND_MS);
    await expectSettled(relay.url);
  });

  it('latency under the first-byte timeout is served and billed', async () => {
    const before = await metric(relay.url, 'kuberelay_tokens_total', { channel: 'default/solo' });
    await soloUp.setFaults({ latencyMs: FIRST_BYTE_MS / 3 });
    const client = relay.client(secret);
    sent++;
    const r = await client.chat.completions.create(solo('slow but fine'));
    await soloUp.setFaults(null);
    expect(r.choices[0]!.message.content).toBeTruthy();
    expect(await metric(relay.url, 'kuberelay_tokens_total', { channel: 'default/solo' })).toBeGreaterThan(
      before,
    );
    await expectSettled(relay.url);
  });

  it('an upstream that never answers: 504 after the first-byte timeout, not a hang', async () => {
    await soloUp.setFaults({ latencyMs: 60_000 });
    const r = await chatRaw(solo('stall'));
    await soloUp.setFaults(null);
    expect(r.status).toBe(504);
    expect(isOpenAIError(r.json)).toBe(true);
    expect(r.ms).toBeGreaterThanOrEqual(FIRST_BYTE_MS - 50);
    expect(r.ms).toBeLessThan(BOUND_MS);
    await expectSettled(relay.url);
  });

  it.each([
    ['stalls', { streamStallAfter: 3, chunkDelayMs: 20 }],
    ['dies', { streamDieAfter: 3, chunkDelayMs: 20 }],
  ])('a stream that %s mid-way ends with an error event, never [DONE]', async (_what, faults) => {
    await soloUp.setFaults(faults);
    const r = await chatRaw({ ...solo('stream'), stream: true, max_tokens: 16 });
    await soloUp.setFaults(null);
    expect(r.status).toBe(200);
    expect(r.ms).toBeLessThan(BOUND_MS);
    const events = sseData(r.text);
    expect(events).not.toContain('[DONE]');
    const contents = events.filter((d) => d.includes('"choices"'));
    expect(contents.length).toBeGreaterThan(0);
    const last = JSON.parse(events.at(-1)!);
    expect(isOpenAIError(last)).toBe(true);
    await expectSettled(relay.url);

    // The official SDK sees the same thing as an error, after the chunks that did arrive.
    await soloUp.setFaults(faults);
    const client = relay.client(secret, { timeoutMs: BOUND_MS });
    sent++;
    let chunks = 0;
    const err = await (async () => {
      const s = await client.chat.completions.create({ ...solo('sdk stream'), stream: true, max_tokens: 16 });
      for await (const _ of s) chunks++;
    })().catch((e: unknown) => e);
    await soloUp.setFaults(null);
    expect(err).toBeInstanceOf(APIError);
    expect(chunks).toBeGreaterThan(0);
    await expectSettled(relay.url);
  });

  it('a complete stream is served and billed', async () => {
    const before = await metric(relay.url, 'kuberelay_tokens_total', { channel: 'default/solo' });
    const client = relay.client(secret);
    sent++;
    const s = await client.chat.completions.create({ ...solo('stream ok'), stream: true, max_tokens: 8 });
    let text = '';
    for await (const c of s) text += c.choices[0]?.delta.content ?? '';
    expect(text.length).toBeGreaterThan(0);
    expect(await metric(relay.url, 'kuberelay_tokens_total', { channel: 'default/solo' })).toBeGreaterThan(
      before,
    );
    await expectSettled(relay.url);
  });

  it('Retry-After: a resting upstream is skipped for its rest, then the client gets a 429 in shape', async () => {
    const pair = (n: string) => ({ ...solo(n), model: 'pair-model' });
    await primary.setFaults({ status: 429, retryAfter: 30 });
    const first = await chatRaw(pair('rate limited upstream'));
    expect(first.status).toBe(200);
    expect(first.headers.get('x-kuberelay-channel')).toBe('default/fallback');
    await primary.resetStats();
    for (let i = 0; i < 5; i++) {
      const r = await chatRaw(pair(`resting ${i}`));
      expect(r.status).toBe(200);
      expect(r.headers.get('x-kuberelay-channel')).toBe('default/fallback');
    }
    expect(await primary.requests()).toBe(0); // its Retry-After is honoured

    await fallback.setFaults({ status: 429, retryAfter: 7 });
    const limited = await chatRaw(pair('both limited'));
    expect(limited.status).toBe(429);
    expect(isOpenAIError(limited.json)).toBe(true);
    const retry = Number(limited.headers.get('retry-after'));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(30);
    // Both rest now: refused at once, in shape, with when to come back.
    const none = await chatRaw(pair('nobody left'));
    expect(none.status).toBeGreaterThanOrEqual(429);
    expect(isOpenAIError(none.json)).toBe(true);
    expect(Number(none.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    await primary.setFaults(null);
    await fallback.setFaults(null);
    await expectSettled(relay.url);
  });

  it('after every fault: permits free, no crash, every request in the usage rollups', async () => {
    await expectPermitsFree();
    expect(relay.proc.child.exitCode).toBeNull();
    expect((await call(`${relay.url}/healthz`)).status).toBe(200);
    type Row = { requests: number; promptTokens: number; cost: number };
    let rows: Row[] = [];
    await until(
      `the usage rollups to count all ${sent} requests`,
      async () => {
        rows = ((await relay.admin(`/admin/usage?keyId=${keyId}`)) as { data: Row[] }).data;
        return rows.reduce((s, r) => s + r.requests, 0) === sent;
      },
      20_000,
    );
    expect(rows.reduce((s, r) => s + r.promptTokens, 0)).toBeGreaterThan(0);
    expect(rows.reduce((s, r) => s + r.cost, 0)).toBeGreaterThan(0);
  });
});
