import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import {
  chat,
  configYaml,
  type Harness,
  metric,
  post,
  startHarness,
  startMocks,
} from '../helpers/harness.ts';

// RateLimitPolicy through the HTTP API of one relay with the embedded (in-process) limiter: the
// request-path wiring, channel policies per attempt, shadow mode, concurrency and budgets.
// The fleet-wide behaviour with Redis is in fleet.test.ts.

const policy = (name: string, spec: string) => `apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: ${name} }
spec:
${spec}`;

describe('RateLimitPolicy on one relay (embedded limiter)', () => {
  let mocks: MockUpstream[];
  let h: Harness;
  beforeAll(async () => {
    mocks = await startMocks(['a', 'backup']);
  });
  afterEach(async () => {
    await h?.close();
    for (const m of mocks) {
      m.setFaults(null);
      m.resetStats();
    }
  });
  afterAll(async () => {
    await Promise.all(mocks.map((m) => m.close()));
  });

  const twoChannels = (docs: string) =>
    configYaml(
      [
        { name: 'a', mock: mocks[0] },
        { name: 'backup', mock: mocks[1], priority: 1 },
      ],
      docs,
    );

  it('limits per client IP by default when there are no keys, with headers on every answer', async () => {
    h = await startHarness(twoChannels(policy('per-ip', '  limits: [{ requests: 3, per: 1m }]\n')));
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await post(h.url, '/v1/chat/completions', chat());
      statuses.push(r.status);
      expect(r.headers.get('ratelimit-policy')).toBe('"per-ip";q=3;w=60');
      if (r.status === 200)
        expect(r.headers.get('ratelimit')).toMatch(new RegExp(`^"per-ip";r=${2 - i};t=\\d+$`));
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(mocks[0]!.stats().requests).toBe(3);
    expect(await metric(h.url, 'kuberelay_ratelimit_decisions_total', { decision: 'allowed' })).toBe(3);
    expect(await metric(h.url, 'kuberelay_ratelimit_decisions_total', { decision: 'rejected' })).toBe(2);
  });

  it('a channel policy skips the channel like a busy one, and refuses with 429 when none is left', async () => {
    h = await startHarness(
      twoChannels(
        policy(
          'to-a',
          '  match: { channels: [a] }\n  limitBy: channel\n  limits: [{ requests: 2, per: 1m }]\n',
        ),
      ),
    );
    const channels: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await post(h.url, '/v1/chat/completions', chat());
      expect(r.status).toBe(200);
      channels.push(r.headers.get('x-kuberelay-channel')!);
    }
    expect(channels).toEqual(['default/a', 'default/a', 'default/backup', 'default/backup']);

    await h.close();
    h = await startHarness(
      configYaml(
        [{ name: 'a', mock: mocks[0] }],
        policy('to-a', '  match: { channels: [a] }\n  limits: [{ requests: 1, per: 1m }]\n'),
      ),
    );
    expect((await post(h.url, '/v1/chat/completions', chat())).status).toBe(200);
    const refused = await post(h.url, '/v1/chat/completions', chat());
    expect(refused.status).toBe(429);
    expect(refused.json.error.code).toBe('rate_limit_exceeded');
    expect(refused.headers.get('retry-after')).toBeTruthy();
  });

  it('shadow policies count and report but never refuse', async () => {
    h = await startHarness(
      twoChannels(policy('trial', '  shadow: true\n  limits: [{ requests: 1, per: 1m }]\n')),
    );
    for (let i = 0; i < 3; i++) expect((await post(h.url, '/v1/chat/completions', chat())).status).toBe(200);
    expect(await metric(h.url, 'kuberelay_ratelimit_decisions_total', { decision: 'shadow_rejected' })).toBe(
      2,
    );
  });

  it('a concurrent limit holds a permit for the whole request and gives it back', async () => {
    h = await startHarness(
      twoChannels(policy('one-at-a-time', '  limitBy: global\n  limits: [{ concurrent: 1 }]\n')),
    );
    mocks[0]!.setFaults({ latencyMs: 300 });
    const [x, y] = await Promise.all([
      post(h.url, '/v1/chat/completions', chat()),
      new Promise((r) => setTimeout(r, 50)).then(() => post(h.url, '/v1/chat/completions', chat())),
    ]);
    expect([x.status, y.status]).toEqual([200, 429]);
    expect(y.headers.get('ratelimit-policy')).toBe('"one-at-a-time";q=1;qu="concurrent-requests"');
    mocks[0]!.setFaults(null);
    expect((await post(h.url, '/v1/chat/completions', chat())).status).toBe(200); // released
  });

  it('a cost budget admits while under it and charges the real cost after each request', async () => {
    h = await startHarness(
      configYaml(
        [
          {
            name: 'a',
            mock: mocks[0],
            models: '[{ name: gpt-4o-mini, pricing: { inputPer1M: "1000000", outputPer1M: "1000000" } }]',
          },
        ],
        // Each request costs $1 per token: 5 prompt + 5 completion = $10.
        policy('budget', '  limitBy: global\n  limits: [{ cost: "25", per: 1d }]\n'),
      ),
    );
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      statuses.push((await post(h.url, '/v1/chat/completions', chat({ max_tokens: 5 }))).status);
      await new Promise((r) => setTimeout(r, 20)); // the charge lands after the response
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]); // $0, $10, $20 spent before each admitted one
  });

  it('token limits reserve the prompt of a chunked body (no content-length) like a sized one', async () => {
    h = await startHarness(
      configYaml(
        [{ name: 'a', mock: mocks[0] }],
        policy('tokens', '  limitBy: global\n  limits: [{ tokens: 100, per: 1m }]\n'),
      ),
    );
    mocks[0]!.setFaults({ latencyMs: 400 }); // the first request is still running when the second arrives
    // ~2,000 bytes of prompt is ~500 tokens at 4 bytes a token: reserved while the first one runs,
    // so the second is refused; an estimate of 0 for a chunked body would let both through.
    const body = JSON.stringify(
      chat({ max_tokens: 5, messages: [{ role: 'user', content: 'x'.repeat(2000) }] }),
    );
    const chunked = () =>
      fetch(`${h.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: new ReadableStream({
          start(c) {
            const bytes = new TextEncoder().encode(body);
            c.enqueue(bytes.subarray(0, 700));
            c.enqueue(bytes.subarray(700));
            c.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
    const first = chunked();
    await new Promise((r) => setTimeout(r, 150));
    const second = await chunked();
    expect(second.status).toBe(429);
    expect((await first).status).toBe(200);
  });

  it('matches models and paths: other requests are not counted', async () => {
    h = await startHarness(
      configYaml(
        [{ name: 'a', mock: mocks[0], models: '[{ name: gpt-4o-mini }, { name: text-embedding-3-small }]' }],
        policy('embeddings', '  match: { paths: [/v1/embeddings] }\n  limits: [{ requests: 1, per: 1m }]\n'),
      ),
    );
    for (let i = 0; i < 3; i++) expect((await post(h.url, '/v1/chat/completions', chat())).status).toBe(200);
    const emb = { model: 'text-embedding-3-small', input: 'hello' };
    expect((await post(h.url, '/v1/embeddings', emb)).status).toBe(200);
    expect((await post(h.url, '/v1/embeddings', emb)).status).toBe(429);
  });
});
