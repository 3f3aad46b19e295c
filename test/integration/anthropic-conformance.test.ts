// Conformance of the anthropic provider: the official `openai` SDK as the client, the relay in
// front of the mock upstream speaking Anthropic's native Messages API. Every chat feature the
// translation covers, stream and non-stream; refusals; usage and cost (cache read and write priced
// as configured) in metrics, spend counters and request logs.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/database.ts';
import { applyMigrations } from '../../db/migrate.ts';
import { type MockUpstream, startMockUpstream } from '../../mock-upstream/server.ts';
import { type Backend, startBackend } from '../helpers/backends.ts';
import { CHANNEL_KEY, type Harness, metric, startHarness } from '../helpers/harness.ts';
import { refused } from '../helpers/sdk-errors.ts';

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';
const UPSTREAM_MODEL = 'claude-sonnet-4-20250514';

const config = (mock: MockUpstream) => `apiVersion: v1
kind: Secret
metadata: { name: creds }
stringData: { apiKey: ${CHANNEL_KEY} }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: claude }
spec:
  provider: anthropic
  baseURL: ${mock.url}
  apiKeySecretRef: { name: creds }
  models:
    - name: claude-sonnet
      upstreamName: ${UPSTREAM_MODEL}
      pricing: { inputPer1M: "3000000", outputPer1M: "15000000", cachedInputPer1M: "300000", cacheWritePer1M: "3750000" }
`;

const weather: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Get the current weather in a given location',
    parameters: {
      type: 'object',
      properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['location'],
    },
  },
};

describe('anthropic provider through the relay (openai SDK client)', () => {
  let backend: Backend;
  let mock: MockUpstream;
  let h: Harness;
  let client: OpenAI;
  let keyId: string;

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
  const upstreamBody = () => mock.stats().last!.body as Record<string, unknown>;

  beforeAll(async () => {
    backend = await startBackend('pglite');
    const { url, dataDir } = await backend.fresh();
    if (url) {
      const db = await openDatabase({ url, dataDir });
      await applyMigrations(db);
      await db.close();
    }
    mock = await startMockUpstream({ name: 'anthropic', apiKey: CHANNEL_KEY });
    h = await startHarness(config(mock), {
      auth: 'keys',
      persistence: {
        databaseUrl: url,
        dataDir,
        admin: { port: 0, token: ADMIN_TOKEN },
        requestLog: { flushIntervalMs: 100 },
      },
    });
    const created = await admin('POST', '/admin/keys', { name: 'conformance' });
    keyId = created.key.id;
    client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: created.secret, maxRetries: 0 });
  });
  afterAll(async () => {
    await h?.close();
    await mock?.close();
    await backend?.close();
  });

  it('non-stream: system and developer -> system, text answer, stop reason, usage; native auth upstream', async () => {
    const r = await client.chat.completions.create({
      model: 'claude-sonnet',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'developer', content: 'Answer in English.' },
        { role: 'user', content: 'Hello there' },
      ],
      temperature: 0.2,
      top_p: 0.9,
    });
    expect(r.object).toBe('chat.completion');
    expect(r.model).toBe('claude-sonnet');
    expect(r.choices[0]).toMatchObject({
      index: 0,
      finish_reason: 'stop',
      message: { role: 'assistant', content: 'This is a mock response from the kuberelay' },
    });
    expect(r.usage).toMatchObject({ prompt_tokens: 7, completion_tokens: 8, total_tokens: 15 });
    const last = mock.stats().last!;
    expect(last.path).toBe('/v1/messages');
    expect(last.headers['x-api-key']).toBe(CHANNEL_KEY);
    expect(last.headers['anthropic-version']).toBe('2023-06-01');
    expect(last.headers.authorization).toBeUndefined();
    expect(upstreamBody()).toEqual({
      model: UPSTREAM_MODEL,
      system: [
        { type: 'text', text: 'Be brief.' },
        { type: 'text', text: 'Answer in English.' },
      ],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello there' }] }],
      max_tokens: 4096,
      temperature: 0.2,
      top_p: 0.9,
    });
  });

  it('stream: role chunk, content deltas, finish reason, usage chunk when asked, [DONE]', async () => {
    const s = await client.chat.completions.create({
      model: 'claude-sonnet',
      messages: [{ role: 'user', content: 'Hello there' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of s) chunks.push(c);
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(
      'This is a mock response from the kuberelay',
    );
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe('stop');
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: 2, completion_tokens: 8 } });
    expect(chunks.every((c) => c.model === 'claude-sonnet' && c.object === 'chat.completion.chunk')).toBe(
      true,
    );
    expect(upstreamBody().stream).toBe(true);
  });

  it('stream framing as other servers send it (CRLF, CR, spaced JSON) translates the same', async () => {
    for (const faults of [
      { sseLineEnding: 'crlf' as const, spacedJson: true },
      { sseLineEnding: 'cr' as const },
    ]) {
      mock.setFaults(faults);
      try {
        const s = await client.chat.completions.create({
          model: 'claude-sonnet',
          messages: [{ role: 'user', content: 'Hello there' }],
          stream: true,
        });
        let text = '';
        for await (const c of s) text += c.choices[0]?.delta.content ?? '';
        expect(text).toBe('This is a mock response from the kuberelay');
      } finally {
        mock.setFaults(null);
      }
    }
  });

  it('a stream cut after its first token ends with an error event, never a [DONE]', async () => {
    mock.setFaults({ streamDieAfter: 3 });
    try {
      const res = await fetch(`${h.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${client.apiKey}` },
        body: JSON.stringify({
          model: 'claude-sonnet',
          messages: [{ role: 'user', content: 'Hi' }],
          stream: true,
        }),
      });
      const text = await res.text();
      expect(res.status).toBe(200);
      expect(text).toContain('"content":"This"');
      expect(text).not.toContain('[DONE]');
      expect(text).toMatch(/data: \{"error":\{[^\n]*"code":"upstream_stream_interrupted"/);
    } finally {
      mock.setFaults(null);
    }
  });

  it('max_tokens / max_completion_tokens -> max_tokens, finish_reason length; stop -> stop_sequences', async () => {
    const short = await client.chat.completions.create({
      model: 'claude-sonnet',
      messages: [{ role: 'user', content: 'Hi' }],
      max_completion_tokens: 3,
    });
    expect(short.choices[0]!.finish_reason).toBe('length');
    expect(short.choices[0]!.message.content).toBe('This is a');
    expect(upstreamBody().max_tokens).toBe(3);
    const stopped = await client.chat.completions.create({
      model: 'claude-sonnet',
      messages: [{ role: 'user', content: 'Hi' }],
      stop: [' response'],
    });
    expect(stopped.choices[0]).toMatchObject({
      finish_reason: 'stop',
      message: { content: 'This is a mock' },
    });
    expect(upstreamBody().stop_sequences).toEqual([' response']);
  });

  it('tools: tool_choice required -> any, tool_calls back (non-stream), then tool results in a user turn', async () => {
    const r = await client.chat.completions.create({
      model: 'claude-sonnet',
      messages: [{ role: 'user', content: 'What is the weather like in San Francisco?' }],
      tools: [weather],
      tool_choice: 'required',
    });
    expect(upstreamBody().tool_choice).toEqual({ type: 'any' });
    expect(upstreamBody().tools).toEqual([
      {
        name: 'get_weather',
        description: weather.function.description,
        input_schema: weather.function.parameters,
      },
    ]);
    const call = r.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(r.choices[0]!.finish_reason).toBe('tool_calls');
    expect(call.type).toBe('function');
    expect(call.function.name).toBe('get_weather');
    expect(JSON.parse(call.function.arguments)).toEqual({ location: 'mock', unit: 'celsius' });

    const next = await client.chat.completions.create({
      model: 'claude-sonnet',
      messages: [
        { role: 'user', content: 'What is the weather like in San Francisco?' },
        r.choices[0]!.message,
        { role: 'tool', tool_call_id: call.id, content: '15 degrees' },
      ],
      tools: [weather],
      tool_choice: 'auto',
    });
    expect(next.choices[0]!.finish_reason).toBe('stop');
    const msgs = upstreamBody().messages as Array<{ role: string; content: unknown[] }>;
    expect(msgs.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(msgs[1]!.content).toEqual([
      { type: 'tool_use', id: call.id, name: 'get_weather', input: { location: 'mock', unit: 'celsius' } },
    ]);
    expect(msgs[2]!.content).toEqual([{ type: 'tool_result', tool_use_id: call.id, content: '15 degrees' }]);
    expect(upstreamBody().tool_choice).toEqual({ type: 'auto' });
  });

  it('tools, stream: a named function choice -> tool; argument deltas add up, id and name on the first', async () => {
    const s = await client.chat.completions.create({
      model: 'claude-sonnet',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [weather],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
      stream: true,
    });
    const deltas: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    let finish: string | null = null;
    for await (const c of s) {
      deltas.push(...(c.choices[0]?.delta.tool_calls ?? []));
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(upstreamBody().tool_choice).toEqual({
      type: 'tool',
      name: 'get_weather',
      disable_parallel_tool_use: true,
    });
    expect(deltas[0]).toMatchObject({ index: 0, type: 'function', function: { name: 'get_weather' } });
    expect(deltas[0]!.id).toMatch(/^toolu_/);
    expect(deltas.length).toBeGreaterThan(2);
    expect(deltas.slice(1).every((d) => d.id === undefined && d.index === 0)).toBe(true);
    expect(JSON.parse(deltas.map((d) => d.function?.arguments ?? '').join(''))).toEqual({
      location: 'mock',
      unit: 'celsius',
    });
    expect(finish).toBe('tool_calls');
  });

  it('images: data URLs -> base64 source, http URLs -> url source', async () => {
    await client.chat.completions.create({
      model: 'claude-sonnet',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Compare these' },
            { type: 'image_url', image_url: { url: 'https://example.com/a.png' } },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
          ],
        },
      ],
    });
    const content = (upstreamBody().messages as Array<{ content: unknown[] }>)[0]!.content;
    expect(content.slice(1)).toEqual([
      { type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
    ]);
  });

  it('what Messages cannot say is a 400 naming the field, and the upstream is never called', async () => {
    const before = mock.stats().requests;
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ n: 2 }, 'n'],
      [{ logprobs: true }, 'logprobs'],
      [
        { response_format: { type: 'json_schema', json_schema: { name: 'x', schema: {} } } },
        'response_format',
      ],
      [{ temperature: 1.7 }, 'temperature'],
    ];
    for (const [extra, param] of cases) {
      const err = await refused(
        client.chat.completions.create({
          model: 'claude-sonnet',
          messages: [{ role: 'user', content: 'Hi' }],
          ...extra,
        } as OpenAI.ChatCompletionCreateParamsNonStreaming),
      );
      expect(err.status).toBe(400);
      expect(err.type).toBe('invalid_request_error');
      expect(err.param).toBe(param);
      expect(err.message).toContain(param);
    }
    expect(mock.stats().requests).toBe(before);
  });

  it("an upstream error reaches the client in OpenAI's shape with the upstream's status", async () => {
    mock.setFaults({ status: 400, count: 1 });
    const bad = await refused(
      client.chat.completions.create({ model: 'claude-sonnet', messages: [{ role: 'user', content: 'Hi' }] }),
    );
    expect(bad.status).toBe(400);
    expect(bad.error).toMatchObject({
      type: 'invalid_request_error',
      code: 'invalid_request_error',
      message: 'HTTP 400 (mock fault)',
    });
  });

  it('usage and cost: cache writes and reads priced as configured, in metrics, spend and request logs', async () => {
    const cost0 = await metric(h.url, 'kuberelay_cost_usd_total', { channel: 'default/claude' });
    const ask = () =>
      client.chat.completions.create({
        model: 'claude-sonnet',
        messages: [
          {
            role: 'system',
            content: [
              {
                type: 'text',
                text: 'a long shared prefix of six words',
                cache_control: { type: 'ephemeral' },
              },
            ] as unknown as string,
          },
          { role: 'user', content: 'Hi there' },
        ],
      });
    const first = await ask();
    expect(first.usage).toMatchObject({
      prompt_tokens: 9,
      completion_tokens: 8,
      prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 7 },
    });
    const second = await ask();
    expect(second.usage).toMatchObject({ prompt_tokens: 9, prompt_tokens_details: { cached_tokens: 7 } });
    // first: 2 plain x $3 + 7 written x $3.75 + 8 out x $15 = 6 + 26.25 + 120
    // second: 2 plain x $3 + 7 read x $0.30 + 8 out x $15 = 6 + 2.1 + 120
    const cost = (await metric(h.url, 'kuberelay_cost_usd_total', { channel: 'default/claude' })) - cost0;
    expect(cost).toBeCloseTo(152.25 + 128.1, 6);
    expect(
      await metric(h.url, 'kuberelay_tokens_total', { channel: 'default/claude', type: 'cache_write' }),
    ).toBeGreaterThanOrEqual(7);
    expect(
      await metric(h.url, 'kuberelay_tokens_total', { channel: 'default/claude', type: 'cached' }),
    ).toBeGreaterThanOrEqual(7);
    await h.relay.persistence!.recorder.flush();
    const logs = await admin('GET', `/admin/logs?keyId=${keyId}&limit=2`);
    expect(logs.data[0]).toMatchObject({
      channel: 'default/claude',
      model: 'claude-sonnet',
      promptTokens: 9,
      cachedTokens: 7,
    });
    expect(logs.data[1]).toMatchObject({ promptTokens: 9, cachedTokens: 0, cacheWriteTokens: 7 });
    const spend = await admin('GET', `/admin/spend?keyId=${keyId}`);
    expect(spend.day.spent).toBeGreaterThanOrEqual(152.25 + 128.1 - 1e-6);
  });
});
