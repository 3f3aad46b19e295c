// The Anthropic Messages ingress with the official `@anthropic-ai/sdk` as the client: natively to an
// anthropic channel (the body passed through, model renamed) and translated for an openai channel
// (Messages -> chat completions -> Messages); the stream helper, a tool-use round trip,
// count_tokens, the models endpoints, failover, and errors in Anthropic's shape (auth, limits, no
// channel, a stream cut mid-way). The upstream is the mock, with its faults (CRLF, spaced JSON).
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/database.ts';
import { applyMigrations } from '../../db/migrate.ts';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import { type Backend, startBackend } from '../helpers/backends.ts';
import { configYaml, type Harness, metric, post, startHarness, startMocks } from '../helpers/harness.ts';
import { refusedAnthropic as refused } from '../helpers/sdk-errors.ts';

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';
const PRICING = '{ inputPer1M: "3", outputPer1M: "15", cachedInputPer1M: "0.3", cacheWritePer1M: "3.75" }';

const policy = `apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: one-a-minute }
spec:
  match: { models: [claude-limited] }
  limitBy: apiKey
  limits: [{ requests: 1, per: 1m }]
`;

// The get_weather tool of Anthropic's tool-use guide
// (https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use).
const weather: Anthropic.Tool = {
  name: 'get_weather',
  description: 'Get the current weather in a given location',
  input_schema: {
    type: 'object',
    properties: {
      location: { type: 'string', description: 'The city and state, e.g. San Francisco, CA' },
      unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
    },
    required: ['location'],
  },
};
const question: Anthropic.MessageParam = {
  role: 'user',
  content: "What's the weather like in San Francisco?",
};

describe('POST /v1/messages with the Anthropic SDK', () => {
  let backend: Backend;
  let claude: MockUpstream; // anthropic, native
  let gpt: MockUpstream; // openai, translated
  let flaky: MockUpstream; // anthropic, fails with 529
  let gem: MockUpstream; // gemini, translated twice (Messages -> chat -> Gemini)
  let h: Harness;
  let secret: string;
  let keyId: string;
  let client: Anthropic;

  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(h.relay.adminUrl! + path, {
      method,
      headers: {
        authorization: `Bearer ${ADMIN_TOKEN}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
    return (await res.json()) as any;
  };
  const upstream = (m: MockUpstream) => m.stats().last!;

  beforeAll(async () => {
    backend = await startBackend('pglite');
    const { url, dataDir } = await backend.fresh();
    if (url) {
      const db = await openDatabase({ url, dataDir });
      await applyMigrations(db);
      await db.close();
    }
    [claude, gpt, flaky, gem] = (await startMocks(['claude', 'gpt', 'flaky', 'gem'])) as [
      MockUpstream,
      MockUpstream,
      MockUpstream,
      MockUpstream,
    ];
    const yaml = configYaml(
      [
        {
          name: 'claude',
          provider: 'anthropic',
          baseURL: claude.url,
          models: `[{ name: claude-native, upstreamName: claude-sonnet-4-5, pricing: ${PRICING} }]`,
        },
        {
          name: 'gpt',
          provider: 'openai',
          mock: gpt,
          models: `[{ name: claude-translated, upstreamName: gpt-4o-mini, pricing: ${PRICING} }, { name: claude-limited, upstreamName: gpt-4o-mini }, { name: meta-llama/Llama-3.1-8B }]`,
        },
        {
          name: 'flaky',
          provider: 'anthropic',
          baseURL: flaky.url,
          models: '[{ name: claude-failover }]',
          extra: '  timeouts: { firstToken: 300ms }\n  cooldown: { failureThreshold: 1000 }\n',
        },
        {
          name: 'backup',
          provider: 'openai',
          mock: gpt,
          priority: 1,
          models: '[{ name: claude-failover, upstreamName: gpt-4o-mini }]',
        },
        {
          name: 'gem',
          provider: 'gemini',
          baseURL: gem.url,
          models: '[{ name: claude-gemini, upstreamName: gemini-2.5-flash }]',
        },
        {
          name: 'dead',
          provider: 'anthropic',
          baseURL: 'http://127.0.0.1:1',
          models: '[{ name: claude-dead }]',
          extra: '  cooldown: { failureThreshold: 1, duration: 10m }\n',
        },
      ],
      policy,
    );
    h = await startHarness(yaml, {
      auth: 'keys',
      persistence: {
        databaseUrl: url,
        dataDir,
        admin: { port: 0, token: ADMIN_TOKEN },
        requestLog: { flushIntervalMs: 100 },
      },
    });
    const created = await admin('POST', '/admin/keys', { name: 'messages' });
    secret = created.secret;
    keyId = created.key.id;
    client = new Anthropic({ baseURL: h.url, apiKey: secret, maxRetries: 0 });
  });
  afterAll(async () => {
    await h?.close();
    await Promise.all([claude, gpt, flaky, gem].map((m) => m?.close()));
    await backend?.close();
  });
  beforeEach(() => {
    for (const m of [claude, gpt, flaky, gem]) m.setFaults(null);
  });

  describe('native: an anthropic channel', () => {
    it('messages.create: the body passes through with the model renamed; the client version and beta go upstream', async () => {
      const m = await client.messages.create(
        {
          model: 'claude-native',
          max_tokens: 1024,
          system: 'Be brief.',
          messages: [{ role: 'user', content: 'Hello, Claude' }],
          output_config: { effort: 'low' },
        },
        { headers: { 'anthropic-beta': 'prompt-caching-2024-07-31' } },
      );
      expect(m).toMatchObject({
        type: 'message',
        role: 'assistant',
        content: [{ type: 'text', text: 'This is a mock response from the kuberelay' }],
        stop_reason: 'end_turn',
        usage: { input_tokens: 4, output_tokens: 8 },
      });
      const last = upstream(claude);
      expect(last.path).toBe('/v1/messages');
      expect(last.body).toEqual({
        model: 'claude-sonnet-4-5',
        max_tokens: 1024,
        system: 'Be brief.',
        messages: [{ role: 'user', content: 'Hello, Claude' }],
        output_config: { effort: 'low' },
      });
      expect(last.headers['x-api-key']).toBe('sk-channel-secret-0123456789');
      expect(last.headers.authorization).toBeUndefined();
      expect(last.headers['anthropic-version']).toBe('2026-10-21'); // what this SDK sends
      expect(last.headers['anthropic-beta']).toBe('prompt-caching-2024-07-31');
    });

    it('messages.stream(): text events and finalMessage over a CRLF, spaced-JSON upstream stream', async () => {
      claude.setFaults({ sseLineEnding: 'crlf', spacedJson: true, chunkDelayMs: 1 });
      const texts: string[] = [];
      const stream = client.messages.stream({
        model: 'claude-native',
        max_tokens: 1024,
        messages: [{ role: 'user', content: 'Hello, Claude' }],
      });
      stream.on('text', (t) => texts.push(t));
      const final = await stream.finalMessage();
      expect(texts.join('')).toBe('This is a mock response from the kuberelay');
      expect(final).toMatchObject({
        content: [{ type: 'text', text: 'This is a mock response from the kuberelay' }],
        stop_reason: 'end_turn',
        usage: { input_tokens: 2, output_tokens: 8 },
      });
    });

    it('usage with cache tokens in metrics, the request log and spend', async () => {
      const before = await metric(h.url, 'kuberelay_tokens_total', {
        channel: 'default/claude',
        type: 'cache_write',
      });
      const m = await client.messages.create({
        model: 'claude-native',
        max_tokens: 1024,
        system: [
          { type: 'text', text: 'a long shared prefix of six words', cache_control: { type: 'ephemeral' } },
        ],
        messages: [{ role: 'user', content: 'Hi there' }],
      });
      expect(m.usage).toMatchObject({ input_tokens: 2, cache_creation_input_tokens: 7, output_tokens: 8 });
      const after = await metric(h.url, 'kuberelay_tokens_total', {
        channel: 'default/claude',
        type: 'cache_write',
      });
      expect(after - before).toBe(7);
      await h.relay.persistence!.recorder.flush();
      const logs = await admin('GET', `/admin/logs?keyId=${keyId}&limit=1`);
      expect(logs.data[0]).toMatchObject({
        route: '/v1/messages',
        channel: 'default/claude',
        model: 'claude-native',
        promptTokens: 9,
        completionTokens: 8,
        cacheWriteTokens: 7,
        usageSource: 'reported',
      });
      // 2 plain x $3 + 7 written x $3.75 + 8 out x $15, per million
      expect(logs.data[0].cost).toBeCloseTo((2 * 3 + 7 * 3.75 + 8 * 15) / 1e6, 12);
    });

    it('a tool-use round trip, streamed: tool_use with input_json_delta, then the tool_result answered', async () => {
      const stream = client.messages.stream({
        model: 'claude-native',
        max_tokens: 1024,
        tools: [weather],
        tool_choice: { type: 'any' },
        messages: [question],
      });
      const jsonDeltas: string[] = [];
      stream.on('inputJson', (partial) => jsonDeltas.push(partial));
      const first = await stream.finalMessage();
      expect(first.stop_reason).toBe('tool_use');
      const use = first.content.find((b) => b.type === 'tool_use')!;
      expect(use).toMatchObject({ name: 'get_weather', input: { location: 'mock', unit: 'celsius' } });
      expect(jsonDeltas.length).toBeGreaterThan(1);
      const second = await client.messages.create({
        model: 'claude-native',
        max_tokens: 1024,
        tools: [weather],
        messages: [
          question,
          { role: 'assistant', content: first.content },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '15 degrees' }] },
        ],
      });
      expect(second.stop_reason).toBe('end_turn');
      expect(second.content[0]).toMatchObject({ type: 'text' });
    });

    it('countTokens: Anthropic counts', async () => {
      const r = await client.messages.countTokens({
        model: 'claude-native',
        messages: [{ role: 'user', content: 'Hello there Claude' }],
      });
      expect(r).toEqual({ input_tokens: 3 });
      expect(upstream(claude).path).toBe('/v1/messages/count_tokens');
      expect((upstream(claude).body as { model: string }).model).toBe('claude-sonnet-4-5');
      const withTools = await client.messages.countTokens({
        model: 'claude-native',
        tools: [weather],
        messages: [{ role: 'user', content: 'Hello there Claude' }],
      });
      expect(withTools.input_tokens).toBeGreaterThan(3);
      // Counting is free: nothing is billed for it.
      await h.relay.persistence!.recorder.flush();
      const logs = await admin('GET', `/admin/logs?keyId=${keyId}&limit=1`);
      expect(logs.data[0]).toMatchObject({ route: '/v1/messages/count_tokens', promptTokens: 0, cost: 0 });
    });

    it('a stream cut after its first tokens ends with an error event in Anthropic shape', async () => {
      claude.setFaults({ streamDieAfter: 3, chunkDelayMs: 1 });
      const res = await post(
        h.url,
        '/v1/messages',
        {
          model: 'claude-native',
          max_tokens: 100,
          stream: true,
          messages: [{ role: 'user', content: 'Hi' }],
        },
        { 'x-api-key': secret, 'anthropic-version': '2023-06-01' },
      );
      expect(res.status).toBe(200);
      expect(res.text).toContain('event: content_block_delta');
      expect(res.text).not.toContain('message_stop');
      const last = res.text
        .trim()
        .split(/\r?\n\r?\n/)
        .at(-1)!;
      expect(last.split('\n')[0]).toBe('event: error');
      expect(JSON.parse(last.split('\n')[1]!.slice(6))).toMatchObject({
        type: 'error',
        error: { type: 'api_error' },
      });
    });
  });

  describe('translated: an openai channel', () => {
    it('messages.create: Messages -> chat completions upstream -> a Message', async () => {
      const m = await client.messages.create({
        model: 'claude-translated',
        max_tokens: 5,
        system: 'Be brief.',
        messages: [{ role: 'user', content: 'Hello, Claude' }],
        stop_sequences: ['\n\nHuman:'],
        metadata: { user_id: 'user-1' },
      });
      expect(m).toMatchObject({
        type: 'message',
        role: 'assistant',
        model: 'claude-translated',
        content: [{ type: 'text', text: 'This is a mock response' }],
        stop_reason: 'end_turn',
        usage: { input_tokens: 4, output_tokens: 5 },
      });
      const last = upstream(gpt);
      expect(last.path).toBe('/v1/chat/completions');
      expect(last.body).toEqual({
        model: 'gpt-4o-mini',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Hello, Claude' },
        ],
        max_tokens: 5,
        stop: ['\n\nHuman:'],
        user: 'user-1',
      });
      expect(last.headers.authorization).toBe('Bearer sk-channel-secret-0123456789');
      expect(last.headers['anthropic-version']).toBeUndefined();
    });

    it('anthropic-beta does not reach a channel that is not anthropic', async () => {
      await client.messages.create(
        { model: 'claude-translated', max_tokens: 5, messages: [question] },
        { headers: { 'anthropic-beta': 'prompt-caching-2024-07-31' } },
      );
      expect(upstream(gpt).headers['anthropic-beta']).toBeUndefined();
    });

    it('messages.stream(): text events, finalMessage with usage, over a CRLF upstream', async () => {
      gpt.setFaults({ sseLineEnding: 'crlf', chunkDelayMs: 1 });
      const texts: string[] = [];
      const stream = client.messages.stream({
        model: 'claude-translated',
        max_tokens: 6,
        messages: [question],
      });
      stream.on('text', (t) => texts.push(t));
      const final = await stream.finalMessage();
      expect(texts.join('')).toBe('This is a mock response from');
      expect(final).toMatchObject({
        model: 'claude-translated',
        content: [{ type: 'text', text: 'This is a mock response from' }],
        stop_reason: 'end_turn',
        usage: { input_tokens: 7, output_tokens: 6 },
      });
      // The relay asked for the usage chunk it needed.
      expect((upstream(gpt).body as Record<string, unknown>).stream_options).toEqual({ include_usage: true });
    });

    it('a tool-use round trip, streamed: tool_calls become tool_use blocks and back', async () => {
      const stream = client.messages.stream({
        model: 'claude-translated',
        max_tokens: 1024,
        tools: [weather],
        tool_choice: { type: 'tool', name: 'get_weather' },
        messages: [question],
      });
      const first = await stream.finalMessage();
      expect(first.stop_reason).toBe('tool_use');
      const use = first.content.find((b) => b.type === 'tool_use')!;
      expect(use).toMatchObject({ name: 'get_weather', input: { location: 'mock', unit: 'celsius' } });
      expect(upstream(gpt).body).toMatchObject({
        tools: [{ type: 'function', function: { name: 'get_weather', parameters: weather.input_schema } }],
        tool_choice: { type: 'function', function: { name: 'get_weather' } },
      });
      const second = await client.messages.create({
        model: 'claude-translated',
        max_tokens: 3,
        tools: [weather],
        messages: [
          question,
          { role: 'assistant', content: first.content },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '15 degrees' }] },
        ],
      });
      expect(second).toMatchObject({
        stop_reason: 'end_turn',
        content: [{ type: 'text', text: 'This is a' }],
      });
      expect((upstream(gpt).body as { messages: unknown[] }).messages.slice(1)).toEqual([
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            {
              id: use.id,
              type: 'function',
              function: { name: 'get_weather', arguments: JSON.stringify(use.input) },
            },
          ],
        },
        { role: 'tool', tool_call_id: use.id, content: '15 degrees' },
      ]);
    });

    it('non-stream tool use: the chat tool call comes back as a tool_use block', async () => {
      const m = await client.messages.create({
        model: 'claude-translated',
        max_tokens: 1024,
        tools: [weather],
        tool_choice: { type: 'any' },
        messages: [question],
      });
      expect(m.stop_reason).toBe('tool_use');
      expect(m.content).toEqual([
        {
          type: 'tool_use',
          id: expect.any(String),
          name: 'get_weather',
          input: { location: 'mock', unit: 'celsius' },
        },
      ]);
    });

    it("an upstream's 400 comes back in Anthropic's shape with the upstream's message", async () => {
      gpt.setFaults({ status: 400 });
      const err = await refused(
        client.messages.create({ model: 'claude-translated', max_tokens: 5, messages: [question] }),
      );
      expect(err.status).toBe(400);
      expect(err.error).toEqual({
        type: 'error',
        error: { type: 'invalid_request_error', message: 'Bad request (mock fault).' },
      });
    });

    it('a translated stream cut after its first tokens ends with an error event, no message_stop', async () => {
      gpt.setFaults({ streamDieAfter: 2, chunkDelayMs: 1 });
      const res = await post(
        h.url,
        '/v1/messages',
        { model: 'claude-translated', max_tokens: 8, stream: true, messages: [question] },
        { 'x-api-key': secret },
      );
      expect(res.text).toContain('event: content_block_delta');
      expect(res.text).not.toContain('message_stop');
      expect(res.text.trim().split('\n\n').at(-1)).toMatch(
        /^event: error\ndata: \{"type":"error","error":\{"type":"api_error"/,
      );
    });

    it('a gemini channel: Messages -> chat -> Gemini and back, streamed with a tool call', async () => {
      const texts: string[] = [];
      const plain = client.messages.stream({ model: 'claude-gemini', max_tokens: 4, messages: [question] });
      plain.on('text', (t) => texts.push(t));
      expect(await plain.finalMessage()).toMatchObject({
        model: 'claude-gemini',
        content: [{ type: 'text', text: 'This is a mock' }],
        usage: { output_tokens: 4 },
      });
      expect(texts.join('')).toBe('This is a mock');
      expect(upstream(gem).path).toBe('/v1beta/models/gemini-2.5-flash:streamGenerateContent');
      const tool = await client.messages
        .stream({
          model: 'claude-gemini',
          max_tokens: 100,
          tools: [weather],
          tool_choice: { type: 'any' },
          messages: [question],
        })
        .finalMessage();
      expect(tool.stop_reason).toBe('tool_use');
      expect(tool.content.find((b) => b.type === 'tool_use')).toMatchObject({
        name: 'get_weather',
        input: { location: 'mock' },
      });
    });

    it('countTokens: the documented estimate, no upstream call', async () => {
      const before = gpt.stats().requests;
      const raw = await client.messages
        .countTokens({
          model: 'claude-translated',
          messages: [{ role: 'user', content: 'Hello there Claude' }],
        })
        .withResponse();
      // ceil(chars / 4) of [system, messages, tools] as JSON
      const chars = JSON.stringify([null, [{ role: 'user', content: 'Hello there Claude' }], null]).length;
      expect(raw.data).toEqual({ input_tokens: Math.ceil(chars / 4) });
      expect(raw.response.headers.get('x-kuberelay-count')).toBe('estimated');
      expect(gpt.stats().requests).toBe(before);
      await h.relay.persistence!.recorder.flush();
      const logs = await admin('GET', `/admin/logs?keyId=${keyId}&limit=1`);
      expect(logs.data[0]).toMatchObject({
        route: '/v1/messages/count_tokens',
        model: 'claude-translated',
        status: 200,
        attempts: 0,
        cost: 0,
      });
    });

    it('a parameter chat completions cannot say is refused by name, in Anthropic shape', async () => {
      const err = await refused(
        client.messages.create({
          model: 'claude-translated',
          max_tokens: 10,
          messages: [question],
          thinking: { type: 'enabled', budget_tokens: 2048 },
        }),
      );
      expect(err.status).toBe(400);
      expect(err.error).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
      expect(err.message).toContain('thinking');
    });
  });

  it('failover: the anthropic channel answers 529, the openai one in the next tier serves the request', async () => {
    flaky.setFaults({ status: 529 });
    const raw = await client.messages
      .create({ model: 'claude-failover', max_tokens: 3, messages: [question] })
      .withResponse();
    expect(raw.data).toMatchObject({
      model: 'claude-failover',
      content: [{ type: 'text', text: 'This is a' }],
    });
    expect(raw.response.headers.get('x-kuberelay-channel')).toBe('default/backup');
    expect(raw.response.headers.get('x-kuberelay-attempts')).toBe('2');
    expect(upstream(flaky).path).toBe('/v1/messages');
  });

  it('failover of a stream: the native one stalls after message_start, the next tier streams it translated', async () => {
    flaky.setFaults({ preambleThenStallMs: 10_000 });
    const texts: string[] = [];
    const stream = client.messages.stream({ model: 'claude-failover', max_tokens: 3, messages: [question] });
    stream.on('text', (t) => texts.push(t));
    const final = await stream.finalMessage();
    expect(texts.join('')).toBe('This is a');
    expect(final).toMatchObject({
      model: 'claude-failover',
      stop_reason: 'end_turn',
      usage: { output_tokens: 3 },
    });
    const res = (await stream.withResponse()).response;
    expect(res.headers.get('x-kuberelay-channel')).toBe('default/backup');
    expect(res.headers.get('x-kuberelay-attempts')).toBe('2');
  });

  describe('errors in Anthropic shape', () => {
    it('a wrong key: 401 authentication_error (x-api-key or Bearer)', async () => {
      const bad = new Anthropic({ baseURL: h.url, apiKey: 'sk-wrong', maxRetries: 0 });
      const err = await refused(
        bad.messages.create({ model: 'claude-native', max_tokens: 1, messages: [question] }),
      );
      expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
      expect(err.error).toEqual({
        type: 'error',
        error: { type: 'authentication_error', message: expect.any(String) },
      });
      const res = await post(
        h.url,
        '/v1/messages/count_tokens',
        { model: 'claude-native', messages: [question] },
        { 'x-api-key': 'sk-wrong', 'anthropic-version': '2023-06-01' },
      );
      expect(res.status).toBe(401);
      expect(res.json).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
    });

    it('the client key in x-api-key, as Anthropic clients send it', async () => {
      const res = await post(
        h.url,
        '/v1/messages',
        { model: 'claude-native', max_tokens: 5, messages: [question] },
        { 'x-api-key': secret, 'anthropic-version': '2023-06-01' },
      );
      expect(res.status).toBe(200);
      expect(res.json.type).toBe('message');
    });

    it('an unknown model: 404 not_found_error', async () => {
      const err = await refused(
        client.messages.create({ model: 'claude-none', max_tokens: 1, messages: [question] }),
      );
      expect(err).toBeInstanceOf(Anthropic.NotFoundError);
      expect(err.error).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
    });

    it('a rate limit: 429 rate_limit_error with retry-after', async () => {
      await client.messages.create({ model: 'claude-limited', max_tokens: 1, messages: [question] });
      const err = await refused(
        client.messages.create({ model: 'claude-limited', max_tokens: 1, messages: [question] }),
      );
      expect(err).toBeInstanceOf(Anthropic.RateLimitError);
      expect(err.error).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
      expect(Number(err.headers?.get('retry-after'))).toBeGreaterThan(0);
    });

    it('no channel: a failing upstream, then every channel cooling down (overloaded_error)', async () => {
      const first = await refused(
        client.messages.create({ model: 'claude-dead', max_tokens: 1, messages: [question] }),
      );
      expect(first.status).toBe(502);
      expect(first.error).toMatchObject({ type: 'error', error: { type: 'api_error' } });
      const second = await refused(
        client.messages.create({ model: 'claude-dead', max_tokens: 1, messages: [question] }),
      );
      expect(second.status).toBe(503);
      expect(second.error).toMatchObject({ type: 'error', error: { type: 'overloaded_error' } });
      expect(second.message).toContain('cooling down');
    });

    it('a Messages path the relay does not serve: 404 not_found_error', async () => {
      const res = await post(h.url, '/v1/messages/batches', {}, { 'x-api-key': secret });
      expect(res.status).toBe(404);
      expect(res.json).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
    });

    it('a body that is not JSON: 400 invalid_request_error', async () => {
      const res = await post(h.url, '/v1/messages', '{"model":', { 'x-api-key': secret });
      expect(res.status).toBe(400);
      expect(res.json).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    });
  });

  describe('models', () => {
    it('models.list and retrieve in Anthropic shape (anthropic-version), 404 for an unknown one', async () => {
      const ids: string[] = [];
      for await (const m of client.models.list({ limit: 2 })) {
        expect(m).toEqual({
          type: 'model',
          id: m.id,
          display_name: m.id,
          created_at: '1970-01-01T00:00:00Z',
        });
        ids.push(m.id);
      }
      expect(ids).toEqual([
        'claude-dead',
        'claude-failover',
        'claude-gemini',
        'claude-limited',
        'claude-native',
        'claude-translated',
        'meta-llama/Llama-3.1-8B',
      ]);
      const page = await client.models.list({ limit: 2 });
      expect(page).toMatchObject({ has_more: true, first_id: 'claude-dead', last_id: 'claude-failover' });
      expect(await client.models.retrieve('claude-native')).toEqual({
        type: 'model',
        id: 'claude-native',
        display_name: 'claude-native',
        created_at: '1970-01-01T00:00:00Z',
      });
      const err = await refused(client.models.retrieve('claude-none'));
      expect(err).toBeInstanceOf(Anthropic.NotFoundError);
      expect(err.error).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
    });

    it('GET /v1/models/{id} in OpenAI shape for the openai SDK, 404 in its shape', async () => {
      const openai = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: secret, maxRetries: 0 });
      expect(await openai.models.retrieve('claude-native')).toEqual({
        id: 'claude-native',
        object: 'model',
        created: 0,
        owned_by: 'kuberelay',
      });
      // A name with a slash, as the SDK sends it (encoded) and as it reads (not encoded).
      expect((await openai.models.retrieve('meta-llama/Llama-3.1-8B')).id).toBe('meta-llama/Llama-3.1-8B');
      const plain = await fetch(`${h.url}/v1/models/meta-llama/Llama-3.1-8B`, {
        headers: { authorization: `Bearer ${secret}` },
      });
      expect(((await plain.json()) as { id: string }).id).toBe('meta-llama/Llama-3.1-8B');
      const twice = await fetch(`${h.url}/v1/models/meta-llama%252FLlama-3.1-8B`, {
        headers: { authorization: `Bearer ${secret}` },
      });
      expect(twice.status).toBe(404); // decoded once, like any path
      try {
        await openai.models.retrieve('claude-none');
        throw new Error('expected a 404');
      } catch (err) {
        expect(err).toBeInstanceOf(OpenAI.NotFoundError);
        expect((err as InstanceType<typeof OpenAI.NotFoundError>).error).toMatchObject({
          code: 'model_not_found',
          type: 'invalid_request_error',
        });
      }
    });
  });
});
