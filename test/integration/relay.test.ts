import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import {
  CHANNEL_KEY,
  chat,
  configYaml,
  type Harness,
  metric,
  post,
  startHarness,
  startMocks,
} from '../helpers/harness.ts';

describe('relay: OpenAI API through the official SDK', () => {
  let mocks: MockUpstream[];
  let h: Harness;
  let client: OpenAI;

  beforeAll(async () => {
    mocks = await startMocks(['main'], { chunkDelayMs: 25 });
    h = await startHarness(
      configYaml([
        {
          name: 'main',
          mock: mocks[0],
          models: `
    - name: gpt-4o-mini
      upstreamName: upstream-mini
      pricing: { inputPer1M: "1000000", outputPer1M: "2000000" }
    - name: text-embedding-3-small
    - name: dall-e-3
    - name: davinci-002`,
        },
      ]),
    );
    client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'client-key-not-forwarded', maxRetries: 0 });
  });
  afterAll(async () => {
    await h.close();
    await Promise.all(mocks.map((m) => m.close()));
  });

  it('non-stream: completion, usage, relay headers; model renamed and credentials swapped upstream', async () => {
    const { data, response } = await client.chat.completions
      .create({ ...chat(), max_tokens: 5 } as OpenAI.ChatCompletionCreateParamsNonStreaming)
      .withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.choices[0]!.message.content!.split(' ')).toHaveLength(5);
    expect(data.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 });
    expect(response.headers.get('x-kuberelay-channel')).toBe('default/main');
    expect(response.headers.get('x-kuberelay-attempts')).toBe('1');
    expect(Number(response.headers.get('x-kuberelay-overhead-ms'))).toBeGreaterThanOrEqual(0);
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);

    const last = mocks[0]!.stats().last!;
    expect((last.body as { model: string }).model).toBe('upstream-mini');
    expect(last.headers.authorization).toBe(`Bearer ${CHANNEL_KEY}`);
    expect(JSON.stringify(last.headers)).not.toContain('client-key-not-forwarded');
    // The cost follows the pricing: 5 prompt tokens at $1/token + 5 completion tokens at $2/token.
    expect(await metric(h.url, 'kuberelay_cost_usd_total', { channel: 'default/main' })).toBeCloseTo(15, 6);
  });

  it('stream: chunks arrive one by one, usage is hidden unless asked, and asked upstream either way', async () => {
    const arrivals: number[] = [];
    const parts: string[] = [];
    const stream = await client.chat.completions.create({ ...chat(), max_tokens: 6, stream: true });
    for await (const ev of stream) {
      arrivals.push(performance.now());
      expect('usage' in ev).toBe(false); // as OpenAI: no usage key unless the client asked
      parts.push(ev.choices[0]?.delta.content ?? '');
    }
    expect(parts.join('').trim().split(' ')).toHaveLength(6);
    // 6 content chunks 25 ms apart upstream: they reach the client spread out, not in one burst.
    expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThan(80);
    expect((mocks[0]!.stats().last!.body as { stream_options: unknown }).stream_options).toEqual({
      include_usage: true,
    });

    const withUsage = await client.chat.completions.create({
      ...chat(),
      max_tokens: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const ev of withUsage) if (ev.usage) usage = ev.usage;
    expect(usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 3 });
  });

  it('accounts streamed usage in the token metrics', async () => {
    const before = await metric(h.url, 'kuberelay_tokens_total', {
      channel: 'default/main',
      type: 'completion',
    });
    const stream = await client.chat.completions.create({ ...chat(), max_tokens: 7, stream: true });
    for await (const _ of stream) {
      // drain
    }
    const after = await metric(h.url, 'kuberelay_tokens_total', {
      channel: 'default/main',
      type: 'completion',
    });
    expect(after - before).toBe(7);
  });

  it('serves embeddings, images, legacy completions and the model list', async () => {
    const emb = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['a b', 'c'] });
    expect(emb.data).toHaveLength(2);
    expect(emb.usage.prompt_tokens).toBe(3);
    const img = await client.images.generate({ model: 'dall-e-3', prompt: 'a relay', n: 1 });
    expect(img.data).toHaveLength(1);
    const comp = await client.completions.create({ model: 'davinci-002', prompt: 'one two', max_tokens: 2 });
    expect(comp.choices[0]!.text.trim().split(' ')).toHaveLength(2);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([
      'dall-e-3',
      'davinci-002',
      'gpt-4o-mini',
      'text-embedding-3-small',
    ]);
  });

  it('reports health, readiness and metrics', async () => {
    expect(await (await fetch(`${h.url}/healthz`)).json()).toEqual({ status: 'ok' });
    expect(await (await fetch(`${h.url}/readyz`)).json()).toEqual({ status: 'ok' });
    const text = await (await fetch(`${h.url}/metrics`)).text();
    for (const name of [
      'kuberelay_requests_total',
      'kuberelay_request_duration_seconds_bucket',
      'kuberelay_upstream_duration_seconds_bucket',
      'kuberelay_time_to_first_token_seconds_bucket',
      'kuberelay_overhead_seconds_bucket',
      'kuberelay_tokens_total',
      'kuberelay_cost_usd_total',
      'kuberelay_channel_state',
      'kuberelay_inflight_requests',
      'kuberelay_queue_depth',
      'kuberelay_config_reloads_total',
      'kuberelay_process_resident_memory_bytes',
    ]) {
      expect(text, name).toContain(name);
    }
    expect(text).toContain('kuberelay_channel_state{channel="default/main",state="healthy"} 1');
    expect(text).not.toContain(CHANNEL_KEY);
  });
});

describe('relay: bad input gets OpenAI-shaped errors', () => {
  let mocks: MockUpstream[];
  let h: Harness;
  beforeAll(async () => {
    mocks = await startMocks(['one']);
    h = await startHarness(configYaml([{ name: 'one', mock: mocks[0] }]), { bodyLimit: 1024 * 1024 });
  });
  afterAll(async () => {
    await h.close();
    await Promise.all(mocks.map((m) => m.close()));
  });

  const cases: [string, string | object, number, string][] = [
    ['malformed JSON', '{"model": "gpt-4o-mini", ', 400, 'invalid_json'],
    ['a JSON array', '[1,2]', 400, 'invalid_body'],
    ['model of the wrong type', { model: 5, messages: [] }, 400, 'missing_model'],
    ['stream of the wrong type', { ...chat(), stream: 'yes' }, 400, 'invalid_type'],
    ['unknown model', { ...chat(), model: 'gpt-9' }, 404, 'model_not_found'],
  ];
  for (const [what, body, status, code] of cases) {
    it(what, async () => {
      const res = await post(h.url, '/v1/chat/completions', body);
      expect(res.status).toBe(status);
      expect(res.json.error).toMatchObject({ code, type: expect.any(String), message: expect.any(String) });
    });
  }

  it('a body over the limit gets 413 and the upstream sees nothing', async () => {
    const before = mocks[0]!.stats().requests;
    const res = await post(h.url, '/v1/chat/completions', { ...chat(), pad: 'x'.repeat(2 * 1024 * 1024) });
    expect(res.status).toBe(413);
    expect(res.json.error.code).toBe('request_too_large');
    expect(mocks[0]!.stats().requests).toBe(before);
  });

  it('an unknown route gets 404 in the same shape', async () => {
    const res = await post(h.url, '/v1/nope', chat());
    expect(res.status).toBe(404);
    expect(res.json.error.code).toBe('not_found');
  });

  it('a wrong content type gets 415', async () => {
    const res = await fetch(`${h.url}/v1/chat/completions`, { method: 'POST', body: 'hello' });
    expect(res.status).toBe(415);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unsupported_media_type');
  });

  it('the relay keeps serving after all of it', async () => {
    const res = await post(h.url, '/v1/chat/completions', chat());
    expect(res.status).toBe(200);
  });
});

describe('relay: failover, cooldowns and concurrency', () => {
  let mocks: MockUpstream[];
  let h: Harness;
  const cooldown = '  cooldown: { failureThreshold: 2, duration: 1s, maxDuration: 4s }\n';

  beforeAll(async () => {
    mocks = await startMocks(['a', 'b', 'backup']);
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

  const twoTiers = (extra = cooldown) =>
    configYaml([
      { name: 'a', mock: mocks[0], extra },
      { name: 'backup', mock: mocks[2], priority: 1, extra },
    ]);

  for (const [what, faults, reason] of [
    ['a 503', { status: 503 }, 'status_503'],
    ['a connection reset', { reset: true }, 'reset'],
    ['a first-byte timeout', { latencyMs: 1500 }, 'timeout'],
  ] as const) {
    it(`fails over before the first byte on ${what}`, async () => {
      h = await startHarness(twoTiers(`${cooldown}  timeouts: { firstByte: 300ms }\n`));
      mocks[0]!.setFaults(faults);
      const res = await post(h.url, '/v1/chat/completions', chat());
      expect(res.status).toBe(200);
      expect(res.headers.get('x-kuberelay-channel')).toBe('default/backup');
      expect(res.headers.get('x-kuberelay-attempts')).toBe('2');
      expect(mocks[0]!.stats().requests).toBe(1);
      expect(await metric(h.url, 'kuberelay_failovers_total', { channel: 'default/a', reason })).toBe(1);
    });
  }

  it('fails over when a channel cannot be connected to', async () => {
    h = await startHarness(
      configYaml([
        { name: 'dead', baseURL: 'http://127.0.0.1:1/v1' },
        { name: 'backup', mock: mocks[2], priority: 1 },
      ]),
    );
    const res = await post(h.url, '/v1/chat/completions', chat());
    expect(res.status).toBe(200);
    expect(res.headers.get('x-kuberelay-channel')).toBe('default/backup');
    expect(
      await metric(h.url, 'kuberelay_upstream_errors_total', { channel: 'default/dead', reason: 'connect' }),
    ).toBe(1);
  });

  it('does not fail over on a client error the channel answered (400 is passed through)', async () => {
    h = await startHarness(twoTiers());
    mocks[0]!.setFaults({ status: 400 });
    const res = await post(h.url, '/v1/chat/completions', chat());
    expect(res.status).toBe(400);
    expect(mocks[2]!.stats().requests).toBe(0);
  });

  it('cools a channel down at the threshold: no traffic until its time is up, then one probe', async () => {
    h = await startHarness(twoTiers());
    mocks[0]!.setFaults({ status: 500 });
    for (let i = 0; i < 2; i++) {
      expect((await post(h.url, '/v1/chat/completions', chat())).headers.get('x-kuberelay-channel')).toBe(
        'default/backup',
      );
    }
    expect(mocks[0]!.stats().requests).toBe(2);
    expect(h.relay.store.cooldownUntil('default/a')).toBeGreaterThan(Date.now());
    for (let i = 0; i < 5; i++) {
      const res = await post(h.url, '/v1/chat/completions', chat());
      expect(res.headers.get('x-kuberelay-attempts')).toBe('1');
    }
    expect(mocks[0]!.stats().requests).toBe(2); // cooling down: no traffic at all
    expect(
      await metric(h.url, 'kuberelay_channel_state', { channel: 'default/a', state: 'cooling_down' }),
    ).toBe(1);
    expect(await metric(h.url, 'kuberelay_cooldowns_total', { channel: 'default/a' })).toBe(1);

    mocks[0]!.setFaults(null);
    await new Promise((r) => setTimeout(r, 1100));
    const res = await post(h.url, '/v1/chat/completions', chat());
    expect(res.headers.get('x-kuberelay-channel')).toBe('default/a');
    expect(await h.relay.store.channelHealth('default/a')).toMatchObject({
      consecutiveFailures: 0,
      streak: 0,
    });
  });

  it('honours Retry-After: the channel rests that long, and the client gets 429 with Retry-After when nothing else serves', async () => {
    h = await startHarness(configYaml([{ name: 'a', mock: mocks[0], extra: cooldown }]));
    mocks[0]!.setFaults({ status: 429, retryAfter: 3 });
    const first = await post(h.url, '/v1/chat/completions', chat());
    expect(first.status).toBe(429);
    expect(first.json.error.code).toBe('upstream_rate_limited');
    expect(first.headers.get('retry-after')).toBe('3');
    const until = h.relay.store.cooldownUntil('default/a') - Date.now();
    expect(until).toBeGreaterThan(2000);
    expect(until).toBeLessThanOrEqual(3000);
    const second = await post(h.url, '/v1/chat/completions', chat());
    expect(second.status).toBe(503);
    expect(second.json.error.code).toBe('no_channel_available');
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(2);
    expect(mocks[0]!.stats().requests).toBe(1);
  });

  it('gives up after the bounded number of attempts with a 502 naming the last channel', async () => {
    h = await startHarness(
      configYaml([
        { name: 'a', mock: mocks[0] },
        { name: 'b', mock: mocks[1] },
        { name: 'backup', mock: mocks[2], priority: 1 },
      ]),
      { maxAttempts: 2 },
    );
    for (const m of mocks) m.setFaults({ status: 502 });
    const res = await post(h.url, '/v1/chat/completions', chat());
    expect(res.status).toBe(502);
    expect(res.json.error).toMatchObject({ code: 'upstream_error', type: 'upstream_error' });
    expect(res.headers.get('x-kuberelay-attempts')).toBe('2');
    expect(mocks.reduce((n, m) => n + m.stats().requests, 0)).toBe(2);
    expect(mocks[2]!.stats().requests).toBe(0); // tier 0 had two channels: the cap hit first
  });

  it('skips suspended channels', async () => {
    h = await startHarness(
      configYaml([
        { name: 'a', mock: mocks[0], extra: '  suspend: true\n' },
        { name: 'backup', mock: mocks[2], priority: 1 },
      ]),
    );
    for (let i = 0; i < 5; i++) await post(h.url, '/v1/chat/completions', chat());
    expect(mocks[0]!.stats().requests).toBe(0);
    expect(mocks[2]!.stats().requests).toBe(5);
  });

  it('after the first byte there is no failover: a stream that dies ends with an error event, never [DONE]', async () => {
    h = await startHarness(twoTiers());
    mocks[0]!.setFaults({ streamDieAfter: 3 });
    const res = await post(h.url, '/v1/chat/completions', chat({ stream: true, max_tokens: 10 }));
    expect(res.status).toBe(200);
    expect(res.headers.get('x-kuberelay-channel')).toBe('default/a');
    const events = res.text.trim().split('\n\n');
    expect(res.text).not.toContain('[DONE]');
    expect(JSON.parse(events.at(-1)!.slice(6)).error.code).toBe('upstream_stream_interrupted');
    expect(mocks[2]!.stats().requests).toBe(0);
    expect(
      await metric(h.url, 'kuberelay_upstream_errors_total', { channel: 'default/a', reason: 'stream' }),
    ).toBe(1);
  });

  it('a stalled stream is cut by the chunk timeout with an error event', async () => {
    h = await startHarness(twoTiers(`${cooldown}  timeouts: { firstByte: 300ms }\n`));
    mocks[0]!.setFaults({ streamStallAfter: 2 });
    const res = await post(h.url, '/v1/chat/completions', chat({ stream: true, max_tokens: 10 }));
    expect(res.text).not.toContain('[DONE]');
    expect(res.text).toContain('upstream_stream_interrupted');
  });

  it('bills a client that disconnects mid-stream for what was streamed', async () => {
    h = await startHarness(twoTiers());
    mocks[0]!.setFaults({ chunkDelayMs: 40 });
    const ac = new AbortController();
    const res = await fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chat({ stream: true, max_tokens: 200 })),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    let text = '';
    while ((text.match(/"content":"/g) ?? []).length < 5) {
      const { value } = await reader.read();
      text += new TextDecoder().decode(value);
    }
    ac.abort();
    await new Promise((r) => setTimeout(r, 300));
    const billed = await metric(h.url, 'kuberelay_tokens_total', {
      channel: 'default/a',
      type: 'completion',
    });
    expect(billed).toBeGreaterThanOrEqual(4);
    expect(billed).toBeLessThan(20); // what was streamed, not the 200 asked for
    expect(await metric(h.url, 'kuberelay_requests_total', { channel: 'default/a', code: '499' })).toBe(1);
  });

  it('maxConcurrent: one in flight, the next queued, the rest refused when the queue is full', async () => {
    h = await startHarness(
      configYaml([
        {
          name: 'a',
          mock: mocks[0],
          extra: '  limits: { maxConcurrent: 1, maxQueue: 1, queueTimeout: 10s }\n',
        },
      ]),
    );
    mocks[0]!.setFaults({ latencyMs: 300 });
    const results = await Promise.all([0, 1, 2].map(() => post(h.url, '/v1/chat/completions', chat())));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 503]);
    expect(results.find((r) => r.status === 503)!.json.error.code).toBe('channel_busy');
    expect(await metric(h.url, 'kuberelay_queue_rejections_total', { reason: 'queue_full' })).toBe(1);
  });

  it('maxConcurrent: a queued request gives up after queueTimeout and fails over', async () => {
    h = await startHarness(
      configYaml([
        { name: 'a', mock: mocks[0], extra: '  limits: { maxConcurrent: 1, queueTimeout: 100ms }\n' },
        { name: 'backup', mock: mocks[2], priority: 1 },
      ]),
    );
    mocks[0]!.setFaults({ latencyMs: 500 });
    const [slow, queued] = await Promise.all([
      post(h.url, '/v1/chat/completions', chat()),
      new Promise((r) => setTimeout(r, 50)).then(() => post(h.url, '/v1/chat/completions', chat())),
    ]);
    expect(slow.headers.get('x-kuberelay-channel')).toBe('default/a');
    expect(queued.headers.get('x-kuberelay-channel')).toBe('default/backup');
    expect(await metric(h.url, 'kuberelay_queue_rejections_total', { reason: 'queue_timeout' })).toBe(1);
  });

  it('maxConcurrent: an attempt cut by the total timeout fails over to a limited peer', async () => {
    // Both channels take a permit (through a queue signal); the timed-out attempt's abort must
    // not reach the next candidate's permit request, which would take the client for gone.
    h = await startHarness(
      configYaml([
        {
          name: 'a',
          mock: mocks[0],
          extra: '  limits: { maxConcurrent: 1 }\n  timeouts: { total: 300ms }\n',
        },
        { name: 'backup', mock: mocks[2], priority: 1, extra: '  limits: { maxConcurrent: 1 }\n' },
      ]),
    );
    mocks[0]!.setFaults({ latencyMs: 2000 });
    const res = await post(h.url, '/v1/chat/completions', chat());
    expect(res.status).toBe(200);
    expect(res.headers.get('x-kuberelay-channel')).toBe('default/backup');
    expect(res.headers.get('x-kuberelay-attempts')).toBe('2');
  });
});

describe('relay: config reload', () => {
  let mocks: MockUpstream[];
  let h: Harness;
  beforeAll(async () => {
    mocks = await startMocks(['a', 'b']);
    h = await startHarness(configYaml([{ name: 'a', mock: mocks[0] }]));
  });
  afterAll(async () => {
    await h.close();
    await Promise.all(mocks.map((m) => m.close()));
  });

  it('follows a valid edit of the file by itself', async () => {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(h.file, configYaml([{ name: 'b', mock: mocks[1], models: '[{ name: gpt-4o }]' }]));
    const deadline = Date.now() + 20_000; // the watcher is quick; a loaded CI machine is not
    let status = 0;
    while (Date.now() < deadline) {
      status = (await post(h.url, '/v1/chat/completions', { ...chat(), model: 'gpt-4o' })).status;
      if (status === 200) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe(200);
    expect((await post(h.url, '/v1/chat/completions', chat())).status).toBe(404);
    expect(mocks[1]!.stats().requests).toBeGreaterThan(0);
  });

  it('refuses an invalid edit and keeps serving the last good config', async () => {
    const before = await metric(h.url, 'kuberelay_config_reloads_total', { result: 'invalid' });
    await h.writeConfig(
      configYaml([{ name: 'b', mock: mocks[1], weight: -3, models: '[{ name: gpt-4o }]' }]),
    );
    expect(await metric(h.url, 'kuberelay_config_reloads_total', { result: 'invalid' })).toBe(before + 1);
    expect(h.relay.state.lastError).toMatch(/config\.yaml, document 2: Channel default\/b: spec\.weight/);
    expect((await post(h.url, '/v1/chat/completions', { ...chat(), model: 'gpt-4o' })).status).toBe(200);
    expect((await fetch(`${h.url}/readyz`)).status).toBe(200);

    await h.writeConfig('not: [valid yaml');
    expect((await post(h.url, '/v1/chat/completions', { ...chat(), model: 'gpt-4o' })).status).toBe(200);
  });

  it('finishes in-flight streams on shutdown and then refuses new connections', async () => {
    mocks[1]!.setFaults({ chunkDelayMs: 30 });
    const pending = post(h.url, '/v1/chat/completions', {
      ...chat({ stream: true, max_tokens: 10 }),
      model: 'gpt-4o',
    });
    await new Promise((r) => setTimeout(r, 80));
    const closing = h.relay.shutdown();
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.text).toContain('data: [DONE]');
    await closing;
    await expect(fetch(`${h.url}/healthz`)).rejects.toThrow();
  });
});
