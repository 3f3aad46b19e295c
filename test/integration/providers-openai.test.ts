import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import {
  CHANNEL_KEY,
  type ChannelSpec,
  configYaml,
  type Harness,
  startHarness,
  startMocks,
} from '../helpers/harness.ts';

// Conformance of the openai and azure-openai adapters with the official `openai` SDK as the
// client, against the mock upstream in each native shape (OpenAI paths and Bearer key; Azure's
// v1 and dated deployment URLs and api-key header), and failover between the two providers.

const client = (h: Harness) => new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'unused', maxRetries: 0 });
const messages = [{ role: 'user' as const, content: 'Say hello to the relay' }];

const KINDS: { kind: string; channel: (m: MockUpstream) => ChannelSpec; path: (op: string) => string }[] = [
  {
    kind: 'openai',
    channel: (mock) => ({
      name: 'c',
      mock,
      provider: 'openai',
      models: '[{ name: gpt-4o-mini, upstreamName: up-model }]',
    }),
    path: (op) => `/v1/${op}`,
  },
  {
    kind: 'azure-openai (v1 API)',
    channel: (mock) => ({
      name: 'c',
      baseURL: mock.url,
      provider: 'azure-openai',
      models: '[{ name: gpt-4o-mini, upstreamName: up-model }]',
    }),
    path: (op) => `/openai/v1/${op}`,
  },
  {
    kind: 'azure-openai (dated API)',
    channel: (mock) => ({
      name: 'c',
      baseURL: mock.url,
      provider: 'azure-openai',
      models: '[{ name: gpt-4o-mini, upstreamName: up-model }]',
      extra: '  azure: { apiVersion: 2024-10-21 }\n',
    }),
    path: (op) => `/openai/deployments/up-model/${op}`,
  },
];

for (const k of KINDS) {
  describe(`provider ${k.kind} through the relay`, () => {
    let mock: MockUpstream;
    let h: Harness;
    beforeAll(async () => {
      mock = (await startMocks(['up']))[0]!;
      h = await startHarness(
        configYaml([
          { ...k.channel(mock!), extra: `${k.channel(mock!).extra ?? ''}  headers: { X-Team: blue }\n` },
        ]),
      );
    });
    afterAll(async () => {
      await h.close();
      await mock.close();
    });

    const sent = () => mock.stats().last!;

    it('chat, non-stream: the native URL, the credential header, static headers, the renamed model', async () => {
      const r = await client(h).chat.completions.create({ model: 'gpt-4o-mini', messages });
      expect(r.object).toBe('chat.completion');
      expect(r.choices[0]!.message.content).toBeTruthy();
      expect(r.usage!.completion_tokens).toBeGreaterThan(0);
      const last = sent();
      expect(last.path).toBe(k.path('chat/completions'));
      expect(last.headers['x-team']).toBe('blue');
      if (k.kind === 'openai') {
        expect(last.headers.authorization).toBe(`Bearer ${CHANNEL_KEY}`);
        expect(last.headers['api-key']).toBeUndefined();
      } else {
        expect(last.headers['api-key']).toBe(CHANNEL_KEY);
        expect(last.headers.authorization).toBeUndefined();
      }
      expect((last.body as { model: string }).model).toBe('up-model');
    });

    it('chat, stream: content deltas, usage when asked for, [DONE]', async () => {
      const s = await client(h).chat.completions.create({
        model: 'gpt-4o-mini',
        messages,
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = '';
      let usage: OpenAI.CompletionUsage | undefined | null;
      for await (const c of s) {
        text += c.choices[0]?.delta.content ?? '';
        if (c.usage) usage = c.usage;
      }
      expect(text.length).toBeGreaterThan(0);
      expect(usage?.completion_tokens).toBeGreaterThan(0);
      expect(sent().path).toBe(k.path('chat/completions'));
    });

    it('embeddings', async () => {
      const r = await client(h).embeddings.create({ model: 'gpt-4o-mini', input: ['a', 'b'] });
      expect(r.data).toHaveLength(2);
      expect(sent().path).toBe(k.path('embeddings'));
    });
  });
}

describe('failover across providers (openai <-> azure-openai in one tier list)', () => {
  let openaiMock: MockUpstream;
  let azureMock: MockUpstream;
  let h: Harness;
  const channels = (firstToken: string) =>
    configYaml([
      {
        name: 'first',
        mock: openaiMock,
        provider: 'openai',
        priority: 0,
        extra: `  timeouts: { firstToken: ${firstToken} }\n`,
      },
      { name: 'second', baseURL: azureMock.url, provider: 'azure-openai', priority: 1 },
    ]);
  beforeAll(async () => {
    const mocks = await startMocks(['openai', 'azure']);
    openaiMock = mocks[0]!;
    azureMock = mocks[1]!;
    h = await startHarness(channels('300ms'));
  });
  afterEach(() => {
    openaiMock.setFaults(null);
    azureMock.setFaults(null);
  });
  afterAll(async () => {
    await h.close();
    await openaiMock.close();
    await azureMock.close();
  });

  it('a 503 from the openai channel is served by the azure one, invisibly', async () => {
    openaiMock.setFaults({ status: 503, count: 1 });
    const { data, response } = await client(h)
      .chat.completions.create({ model: 'gpt-4o-mini', messages })
      .withResponse();
    expect(data.choices[0]!.message.content).toBeTruthy();
    expect(response.headers.get('x-kuberelay-channel')).toBe('default/second');
    expect(response.headers.get('x-kuberelay-attempts')).toBe('2');
    expect(azureMock.stats().last!.path).toBe('/openai/v1/chat/completions');
  });

  it('a stream whose first token stalls after its role chunk fails over before the first byte', async () => {
    openaiMock.setFaults({ preambleThenStallMs: 60_000 });
    const { data: s, response } = await client(h)
      .chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })
      .withResponse();
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of s) chunks.push(c);
    expect(response.headers.get('x-kuberelay-channel')).toBe('default/second');
    // The client saw one answer: one role chunk (the second channel's), then its content.
    expect(chunks.filter((c) => c.choices[0]?.delta.role === 'assistant')).toHaveLength(1);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBeTruthy();
    expect(openaiMock.stats().requests).toBeGreaterThan(0);
  });

  it('a stream that ends before its first token fails over too', async () => {
    openaiMock.setFaults({ streamDieAfter: 0 });
    const { data: s, response } = await client(h)
      .chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })
      .withResponse();
    let text = '';
    for await (const c of s) text += c.choices[0]?.delta.content ?? '';
    expect(text).toBeTruthy();
    expect(response.headers.get('x-kuberelay-channel')).toBe('default/second');
  });

  it('a slow first token within timeouts.firstToken is served by the first channel', async () => {
    await h.writeConfig(channels('30s'));
    try {
      openaiMock.setFaults({ preambleThenStallMs: 150 });
      const { data: s, response } = await client(h)
        .chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })
        .withResponse();
      let text = '';
      for await (const c of s) text += c.choices[0]?.delta.content ?? '';
      expect(text).toBeTruthy();
      expect(response.headers.get('x-kuberelay-channel')).toBe('default/first');
    } finally {
      await h.writeConfig(channels('300ms'));
    }
  });
});
