import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import { configYaml, type Harness, startHarness, startMocks } from '../helpers/harness.ts';
import { refused } from '../helpers/sdk-errors.ts';

// Failover between an anthropic and an openai channel for one model name, both ways, stream
// included: the client (the official openai SDK) sees one answer in OpenAI's shape, whichever
// provider served it.

const client = (h: Harness) => new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'unused', maxRetries: 0 });
const messages = [{ role: 'user' as const, content: 'Say hello to the relay' }];
const MODELS = '[{ name: gpt-4o-mini, upstreamName: claude-sonnet-4-20250514 }]';

describe('failover across providers (anthropic <-> openai for one model name)', () => {
  let anthropicMock: MockUpstream;
  let openaiMock: MockUpstream;
  let h: Harness;
  const channels = (anthropicFirst: boolean, cooldown = '') =>
    configYaml([
      {
        name: 'claude',
        baseURL: anthropicMock.url,
        provider: 'anthropic',
        priority: anthropicFirst ? 0 : 1,
        models: MODELS,
        extra: `  timeouts: { firstToken: 300ms }\n${cooldown}`,
      },
      { name: 'gpt', mock: openaiMock, provider: 'openai', priority: anthropicFirst ? 1 : 0 },
    ]);
  beforeAll(async () => {
    const mocks = await startMocks(['anthropic', 'openai']);
    anthropicMock = mocks[0]!;
    openaiMock = mocks[1]!;
    h = await startHarness(channels(true));
  });
  afterEach(async () => {
    anthropicMock.setFaults(null);
    openaiMock.setFaults(null);
    await h.writeConfig(channels(true));
  });
  afterAll(async () => {
    await h.close();
    await anthropicMock.close();
    await openaiMock.close();
  });

  const stream = async () => {
    const { data: s, response } = await client(h)
      .chat.completions.create({
        model: 'gpt-4o-mini',
        messages,
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse();
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of s) chunks.push(c);
    return { chunks, channel: response.headers.get('x-kuberelay-channel') };
  };

  it('a 529 overloaded from anthropic is served by the openai channel, invisibly', async () => {
    anthropicMock.setFaults({ status: 529, count: 1 });
    const { data, response } = await client(h)
      .chat.completions.create({ model: 'gpt-4o-mini', messages })
      .withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.choices[0]!.message.content).toBeTruthy();
    expect(response.headers.get('x-kuberelay-channel')).toBe('default/gpt');
    expect(response.headers.get('x-kuberelay-attempts')).toBe('2');
    expect(anthropicMock.stats().last!.path).toBe('/v1/messages');
  });

  it('529 fails over even where cooldown.onStatus leaves out 5xx; other statuses follow onStatus', async () => {
    await h.writeConfig(channels(true, '  cooldown: { onStatus: [401] }\n'));
    anthropicMock.setFaults({ status: 529, count: 1 });
    const { response } = await client(h)
      .chat.completions.create({ model: 'gpt-4o-mini', messages })
      .withResponse();
    expect(response.headers.get('x-kuberelay-channel')).toBe('default/gpt');
    anthropicMock.setFaults({ status: 503, count: 1 });
    const err = await client(h)
      .chat.completions.create({ model: 'gpt-4o-mini', messages })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(503); // answered, not failed over
  });

  it('an anthropic stream stalled after message_start fails over before the first byte', async () => {
    anthropicMock.setFaults({ preambleThenStallMs: 60_000 });
    const { chunks, channel } = await stream();
    expect(channel).toBe('default/gpt');
    expect(chunks.filter((c) => c.choices[0]?.delta.role === 'assistant')).toHaveLength(1);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBeTruthy();
    expect(anthropicMock.stats().byPath['/v1/messages']).toBeGreaterThan(0);
  });

  it('an anthropic stream that ends before its first token fails over too', async () => {
    anthropicMock.setFaults({ streamDieAfter: 0 });
    const { chunks, channel } = await stream();
    expect(channel).toBe('default/gpt');
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBeTruthy();
  });

  it('openai failing first: the anthropic channel serves the stream, translated, with usage', async () => {
    await h.writeConfig(channels(false));
    openaiMock.setFaults({ status: 503, count: 1 });
    const before = openaiMock.stats().requests;
    const { chunks, channel } = await stream();
    expect(channel).toBe('default/claude');
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(
      'This is a mock response from the kuberelay',
    );
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe('stop');
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { completion_tokens: 8 } });
    expect(chunks.every((c) => c.model === 'gpt-4o-mini')).toBe(true);
    expect(openaiMock.stats().requests).toBe(before + 1);
  });

  it('what anthropic cannot say (n: 2) is served by the openai channel of the same model', async () => {
    const before = anthropicMock.stats().requests;
    const { data, response } = await client(h)
      .chat.completions.create({ model: 'gpt-4o-mini', messages, n: 2 })
      .withResponse();
    expect(data.choices[0]!.message.content).toBeTruthy();
    expect(response.headers.get('x-kuberelay-channel')).toBe('default/gpt');
    expect(anthropicMock.stats().requests).toBe(before);
  });
});

describe('an anthropic channel alone under upstream faults: OpenAI-shaped errors, nothing hangs', () => {
  let mock: MockUpstream;
  let h: Harness;
  beforeAll(async () => {
    mock = (await startMocks(['anthropic']))[0]!;
    h = await startHarness(
      configYaml([
        {
          name: 'claude',
          baseURL: mock.url,
          provider: 'anthropic',
          models: MODELS,
          extra: '  timeouts: { firstByte: 500ms }\n  cooldown: { failureThreshold: 100 }\n',
        },
      ]),
    );
  });
  afterEach(() => mock.setFaults(null));
  afterAll(async () => {
    await h.close();
    await mock.close();
  });

  const ask = () => client(h).chat.completions.create({ model: 'gpt-4o-mini', messages });

  it('a 429, an HTML page, a reset: errors in OpenAI shape, never the upstream body', async () => {
    for (const faults of [{ status: 429 }, { html: true }, { reset: true }]) {
      mock.setFaults({ ...faults, count: 1 });
      const err = await refused(ask());
      expect(err.status).toBeGreaterThanOrEqual(429);
      expect(err.error).toMatchObject({ type: expect.any(String), code: expect.any(String) });
      expect(JSON.stringify(err.error)).not.toContain('<html>');
    }
    expect((await ask()).choices[0]!.message.content).toBeTruthy();
  });

  it('a stream stalled after its first token ends within the gap timeout with an error event', async () => {
    mock.setFaults({ streamStallAfter: 2 });
    const t0 = performance.now();
    const res = await fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages, stream: true }),
    });
    const text = await res.text();
    expect(performance.now() - t0).toBeLessThan(20_000); // bounded (the gap timeout is 500 ms)
    expect(text).toContain('"content":"This"');
    expect(text).not.toContain('[DONE]');
    expect(text).toContain('"error"');
  });
});
