import http from 'node:http';
import OpenAI from 'openai';
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

// Upstream faults and client shapes nobody on the project wrote: only the upstream's failures count
// against a channel, and every success is billed by what it used.

let mocks: MockUpstream[];
let h: Harness | undefined;
const cooldown = '  cooldown: { failureThreshold: 2, duration: 30s, maxDuration: 60s }\n';

beforeAll(async () => {
  mocks = await startMocks(['a', 'backup']);
});
afterEach(async () => {
  await h?.close();
  h = undefined;
  for (const m of mocks) {
    m.setFaults(null);
    m.resetStats();
  }
});
afterAll(async () => {
  await Promise.all(mocks.map((m) => m.close()));
});

const twoTiers = (extra = cooldown, models?: string) =>
  configYaml([
    { name: 'a', mock: mocks[0], extra, models },
    { name: 'backup', mock: mocks[1], priority: 1, extra, models },
  ]);
/** A streamed chat request for the SDK (its overloads need `stream: true` as a literal). */
const streamed = (extra: Record<string, unknown> = {}) => ({ ...chat(extra), stream: true as const });
const sdk = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: 'client-key', maxRetries: 0 });
const coolingDown = (id: string) => h!.relay.store.cooldownUntil(id) > Date.now();

/** A POST through node:http with the given headers; the body is sent as the client decides. */
function rawPost(
  url: string,
  path: string,
  body: string,
  headers: Record<string, string>,
  opts: { waitForContinue?: boolean; chunked?: boolean } = {},
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    if (opts.waitForContinue) req.on('continue', () => req.end(body));
    else if (opts.chunked) {
      req.write(body.slice(0, 10));
      req.end(body.slice(10));
    } else req.end(body);
  });
}

describe("only the upstream's failures count against a channel", () => {
  it('Expect: 100-continue (curl, large bodies) is served, and never counts against the channel', async () => {
    h = await startHarness(twoTiers());
    const body = JSON.stringify(chat({ messages: [{ role: 'user', content: 'x'.repeat(2048) }] }));
    for (let i = 0; i < 3; i++) {
      const res = await rawPost(
        h.url,
        '/v1/chat/completions',
        body,
        { 'content-type': 'application/json', expect: '100-continue', 'content-length': String(body.length) },
        { waitForContinue: true },
      );
      expect(res.status).toBe(200);
      expect(JSON.parse(res.text).object).toBe('chat.completion');
    }
    expect(mocks[0]!.stats().requests).toBe(3);
    expect(mocks[0]!.stats().last?.headers.expect).toBeUndefined();
    expect(await metric(h.url, 'kuberelay_upstream_errors_total')).toBe(0);
    expect(coolingDown('default/a')).toBe(false);
  });

  it("an error raised on the relay's side (a closed pool) is the relay's 500, never a cooldown", async () => {
    h = await startHarness(configYaml([{ name: 'a', mock: mocks[0], extra: cooldown }]));
    await h.relay.state.runtime!.channels.get('default/a')!.dispatcher.close();
    for (let i = 0; i < 3; i++) {
      const res = await post(h.url, '/v1/chat/completions', chat());
      expect(res.status).toBe(500);
      expect(res.json.error).toMatchObject({ type: 'server_error', code: 'relay_error' });
    }
    expect(mocks[0]!.stats().requests).toBe(0);
    expect(coolingDown('default/a')).toBe(false);
    expect((await h.relay.store.channelHealth('default/a')).consecutiveFailures).toBe(0);
    expect(await metric(h.url, 'kuberelay_upstream_errors_total')).toBe(0);
  });

  it('a request queued across a config change is sent on the new pool, not the retired one', async () => {
    const limits =
      '  limits: { maxConcurrent: 1, queueTimeout: 10s }\n  cooldown: { failureThreshold: 1, duration: 30s }\n';
    h = await startHarness(configYaml([{ name: 'a', mock: mocks[0], extra: limits }]));
    mocks[0]!.setFaults({ latencyMs: 600, count: 1 });
    const first = post(h.url, '/v1/chat/completions', chat());
    await expect.poll(() => mocks[0]!.stats().requests).toBe(1);
    const queued = post(h.url, '/v1/chat/completions', chat());
    await expect.poll(() => metric(h!.url, 'kuberelay_queue_depth', { channel: 'default/a' })).toBe(1);
    await h.writeConfig(configYaml([{ name: 'a', mock: mocks[1], extra: limits }])); // re-pointed: a new pool
    expect((await first).status).toBe(200);
    const res = await queued;
    expect(res.status).toBe(200);
    expect(mocks[1]!.stats().requests).toBe(1);
    expect(coolingDown('default/a')).toBe(false);
  });

  it('headers cross by allow-list: client identity and cookies never reach the provider, account headers never reach the client', async () => {
    h = await startHarness(twoTiers());
    const res = await fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: 'Bearer client-secret',
        cookie: 'session=client-session',
        'x-forwarded-for': '203.0.113.7',
        'x-real-ip': '203.0.113.7',
        'true-client-ip': '203.0.113.7',
        'cf-connecting-ip': '203.0.113.7',
        'user-agent': 'client-app/1.0 (alice@example.com)',
        'x-stainless-os': 'MacOS',
        'x-http-method-override': 'DELETE',
        'x-method-override': 'DELETE',
        'content-encoding': 'identity',
        'openai-organization': 'org-client',
        'openai-beta': 'assistants=v2',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      },
      body: JSON.stringify(chat()),
    });
    expect(res.status).toBe(200);
    const sent = mocks[0]!.stats().last!.headers;
    for (const name of [
      'cookie',
      'x-forwarded-for',
      'x-real-ip',
      'true-client-ip',
      'cf-connecting-ip',
      'x-stainless-os',
      'x-http-method-override',
      'x-method-override',
      'content-encoding',
      'openai-organization',
    ]) {
      expect(sent[name], name).toBeUndefined();
    }
    expect(sent.authorization).not.toContain('client-secret');
    expect(sent['user-agent']).not.toContain('alice');
    expect(sent['openai-beta']).toBe('assistants=v2');
    // Tracing off: the caller's trace context passes through unchanged.
    expect(sent.traceparent).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    for (const name of [
      'openai-organization',
      'openai-project',
      'set-cookie',
      'x-ratelimit-limit-requests',
    ]) {
      expect(res.headers.get(name), name).toBeNull();
    }
    expect(res.headers.get('openai-processing-ms')).toBe('1');
    expect(res.headers.get('content-type')).toContain('application/json');
  });

  it('a channel whose streams always break mid-way cools down (a stream succeeds only when it completes)', async () => {
    h = await startHarness(twoTiers());
    mocks[0]!.setFaults({ streamDieAfter: 2 });
    const client = sdk(h.url);
    for (let i = 0; i < 2; i++) {
      const stream = await client.chat.completions.create(streamed());
      await expect(async () => {
        for await (const _ of stream) {
          // read until the relay's error event
        }
      }).rejects.toThrow(/stream/);
    }
    expect(coolingDown('default/a')).toBe(true);
    const res = await post(h.url, '/v1/chat/completions', chat());
    expect(res.headers.get('x-kuberelay-channel')).toBe('default/backup');
  });

  it('a success does not end a cooldown that began after its request was sent', async () => {
    h = await startHarness(twoTiers());
    mocks[0]!.setFaults({ latencyMs: 800, count: 1 }); // the slow request
    const slow = post(h.url, '/v1/chat/completions', chat());
    await expect.poll(() => mocks[0]!.stats().requests).toBe(1);
    mocks[0]!.setFaults({ status: 500, count: 2 });
    for (let i = 0; i < 2; i++) await post(h.url, '/v1/chat/completions', chat());
    expect(coolingDown('default/a')).toBe(true);
    const res = await slow;
    expect(res.status).toBe(200);
    expect(res.headers.get('x-kuberelay-channel')).toBe('default/a');
    expect(coolingDown('default/a')).toBe(true);
    expect((await post(h.url, '/v1/chat/completions', chat())).headers.get('x-kuberelay-channel')).toBe(
      'default/backup',
    );
  });

  it('a success does not shorten a Retry-After rest', async () => {
    h = await startHarness(twoTiers());
    mocks[0]!.setFaults({ latencyMs: 800, count: 1 });
    const slow = post(h.url, '/v1/chat/completions', chat());
    await expect.poll(() => mocks[0]!.stats().requests).toBe(1);
    mocks[0]!.setFaults({ status: 429, retryAfter: 20, count: 1 });
    await post(h.url, '/v1/chat/completions', chat());
    const until = h.relay.store.cooldownUntil('default/a');
    expect(until).toBeGreaterThan(Date.now() + 15_000);
    expect((await slow).status).toBe(200);
    expect(h.relay.store.cooldownUntil('default/a')).toBe(until);
  });

  it('a 200 whose content type does not fit the endpoint fails over before the first byte', async () => {
    h = await startHarness(twoTiers());
    mocks[0]!.setFaults({ html: true });
    const client = sdk(h.url);
    const { data, response } = await client.chat.completions.create(chat()).withResponse();
    expect(data.object).toBe('chat.completion');
    expect(response.headers.get('x-kuberelay-channel')).toBe('default/backup');
    const stream = await client.chat.completions.create(streamed());
    let text = '';
    for await (const ev of stream) text += ev.choices[0]?.delta.content ?? '';
    expect(text.length).toBeGreaterThan(0);
    expect(
      await metric(h.url, 'kuberelay_upstream_errors_total', {
        channel: 'default/a',
        reason: 'content_type',
      }),
    ).toBe(2);
    expect(coolingDown('default/a')).toBe(true);
  });

  it("a client too slow to read its stream is not the channel's failure when the total timeout passes", async () => {
    h = await startHarness(twoTiers(`${cooldown}  timeouts: { total: 2s }\n`));
    mocks[0]!.setFaults({ streamEventBytes: 64 * 1024 * 1024 });
    const ac = new AbortController();
    const res = await fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chat({ stream: true })),
      signal: ac.signal,
    });
    expect(res.status).toBe(200); // and then this client reads nothing
    await expect
      .poll(() => metric(h!.url, 'kuberelay_requests_total', { channel: 'default/a' }), { timeout: 15_000 })
      .toBe(1);
    ac.abort();
    expect(await metric(h.url, 'kuberelay_upstream_errors_total')).toBe(0);
    expect((await h.relay.store.channelHealth('default/a')).consecutiveFailures).toBe(0);
  });

  it('after [DONE] the response ends, even when the upstream keeps its socket open', async () => {
    h = await startHarness(twoTiers(`${cooldown}  timeouts: { firstByte: 2s }\n`));
    mocks[0]!.setFaults({ holdAfterDone: true });
    const res = await post(h.url, '/v1/chat/completions', chat({ stream: true }));
    expect(res.status).toBe(200);
    expect(res.text.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(res.text).not.toContain('upstream_stream_interrupted');
    expect(await metric(h.url, 'kuberelay_upstream_errors_total')).toBe(0);
    // And the SDK's stream completes.
    const stream = await sdk(h.url).chat.completions.create(streamed());
    let chunks = 0;
    for await (const _ of stream) chunks++;
    expect(chunks).toBeGreaterThan(1);
  });
});

describe('upstream connections are reused', () => {
  it('a stream whose chunked end follows [DONE] in a write of its own keeps its upstream connection', async () => {
    // uvicorn/Starlette (vLLM, most Python servers) write each event as it is yielded and the
    // terminator after it. Letting the body go at [DONE] closed the connection: a new TCP (and TLS)
    // handshake before every streamed answer's first token.
    h = await startHarness(twoTiers());
    mocks[0]!.setFaults({ endAfterDoneMs: 5 });
    const client = sdk(h.url);
    for (let i = 0; i < 6; i++) {
      let text = '';
      for await (const c of await client.chat.completions.create(streamed()))
        text += c.choices[0]?.delta?.content ?? '';
      expect(text.length).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 50)); // the terminator comes 5 ms after [DONE]
    }
    expect(mocks[0]!.stats().requests).toBe(6);
    // One connection, or two when a loaded machine sent a request before the last terminator came.
    expect(mocks[0]!.stats().connections).toBeLessThanOrEqual(2);
    expect(await metric(h.url, 'kuberelay_upstream_errors_total')).toBe(0);
  });

  it('an upstream that keeps its socket open after [DONE] has it closed within a bound', async () => {
    h = await startHarness(twoTiers());
    mocks[0]!.setFaults({ holdAfterDone: true });
    const res = await post(h.url, '/v1/chat/completions', chat({ stream: true }));
    expect(res.text.endsWith('data: [DONE]\n\n')).toBe(true);
    const t0 = Date.now();
    while (mocks[0]!.openConnections() > 0 && Date.now() - t0 < 10_000)
      await new Promise((r) => setTimeout(r, 20));
    expect(mocks[0]!.openConnections()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});

describe('hostile upstream shapes', () => {
  it('one 16 MB SSE event is forwarded as it arrives, before it is even finished', async () => {
    h = await startHarness(twoTiers(`${cooldown}  timeouts: { firstByte: 3s }\n`));
    const size = 16 * 1024 * 1024;
    mocks[0]!.setFaults({ streamEventBytes: size });
    const res = await fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chat({ stream: true })),
    });
    const reader = res.body!.getReader();
    let got = 0;
    while (got < size) {
      const { value, done } = await reader.read();
      if (done) break;
      got += value.length;
    }
    // The upstream never finished that event: these bytes were passed on, not held.
    expect(got).toBeGreaterThanOrEqual(size);
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
    let rest = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    expect(rest).toContain('upstream_stream_interrupted'); // then the chunk timeout cuts it
  });
});

describe('billing: every successful request is charged by what it used', () => {
  const priced = `
    - name: gpt-4o-mini
      pricing: { inputPer1M: "1000000", outputPer1M: "2000000" }
    - name: text-embedding-3-small
      pricing: { inputPer1M: "1000000" }
    - name: dall-e-2
      pricing: { perRequest: "0.02" }`;
  const cost = (model: string) => metric(h!.url, 'kuberelay_cost_usd_total', { channel: 'default/a', model });
  const tokens = (type: string) => metric(h!.url, 'kuberelay_tokens_total', { channel: 'default/a', type });

  it('images priced perRequest are charged although the response has no usage', async () => {
    h = await startHarness(twoTiers(cooldown, priced));
    const img = await sdk(h.url).images.generate({ model: 'dall-e-2', prompt: 'a lighthouse', n: 2 });
    expect(img.data).toHaveLength(2);
    expect(img.usage).toBeUndefined();
    expect(await cost('dall-e-2')).toBeCloseTo(0.02, 10);
  });

  it('a non-stream body of any size is billed from its usage (a 20 MB embeddings answer)', async () => {
    h = await startHarness(twoTiers(cooldown, priced));
    const input = Array.from({ length: 800 }, (_, i) => `document number ${i}`);
    const res = await sdk(h.url).embeddings.create({
      model: 'text-embedding-3-small',
      input,
      dimensions: 2048,
      encoding_format: 'float',
    });
    expect(res.data).toHaveLength(800);
    expect(JSON.stringify(res).length).toBeGreaterThan(16 * 1024 * 1024);
    expect(await tokens('prompt')).toBe(res.usage.prompt_tokens);
    expect(await cost('text-embedding-3-small')).toBeCloseTo(res.usage.prompt_tokens, 6);
  });

  for (const [framing, faults] of [
    ['CRLF framing', { sseLineEnding: 'crlf' }],
    ['CR framing', { sseLineEnding: 'cr' }],
    ['spaced JSON ("usage": {)', { spacedJson: true }],
  ] as const) {
    it(`stream usage is billed with ${framing}`, async () => {
      h = await startHarness(twoTiers(cooldown, priced));
      mocks[0]!.setFaults(faults);
      const stream = await sdk(h.url).chat.completions.create(
        streamed({ stream_options: { include_usage: true } }),
      );
      let usage: OpenAI.CompletionUsage | undefined | null;
      for await (const ev of stream) if (ev.usage) usage = ev.usage;
      expect(usage?.completion_tokens).toBeGreaterThan(0);
      expect(await tokens('completion')).toBe(usage!.completion_tokens);
      expect(await tokens('prompt')).toBe(usage!.prompt_tokens);
    });
  }

  it('a client that leaves mid-stream is billed a prompt estimate also when its body was chunked', async () => {
    h = await startHarness(twoTiers(cooldown, priced));
    mocks[0]!.setFaults({ chunkDelayMs: 40 });
    const body = JSON.stringify(
      chat({ stream: true, max_tokens: 200, messages: [{ role: 'user', content: 'y'.repeat(4000) }] }),
    );
    await new Promise<void>((resolve, reject) => {
      const req = http.request(
        `${h!.url}/v1/chat/completions`,
        { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } },
        (res) => {
          let seen = 0;
          res.on('data', (d: Buffer) => {
            seen += (d.toString().match(/"content":"/g) ?? []).length;
            if (seen >= 3) {
              req.destroy();
              resolve();
            }
          });
        },
      );
      req.on('error', () => {});
      req.on('close', () => resolve());
      req.write(body.slice(0, 100));
      setTimeout(() => req.end(body.slice(100)), 20);
      setTimeout(() => reject(new Error('no stream')), 10_000).unref();
    });
    await expect.poll(() => tokens('prompt')).toBeGreaterThanOrEqual(1000);
  });
});
