// The gemini provider through the relay, with the official `openai` SDK as the client and the mock
// upstream speaking Gemini's native API: chat (stream and not, function calls), embeddings, refusals,
// upstream errors, usage and cost in metrics, spend and request logs, and failover between Gemini
// and OpenAI-shaped channels that serve one model.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MockUpstream, startMockUpstream } from '../../mock-upstream/server.ts';
import { CHANNEL_KEY, type Harness, metric, startHarness } from '../helpers/harness.ts';
import { refused } from '../helpers/sdk-errors.ts';

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';

const channel = (
  name: string,
  provider: string,
  baseURL: string,
  models: string,
  extra = '',
  secret = 'creds',
) =>
  `apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: ${name} }
spec:
  provider: ${provider}
  baseURL: ${baseURL}
  apiKeySecretRef: { name: ${secret} }
  models: ${models}
${extra}`;

describe('gemini provider: OpenAI SDK -> relay -> Gemini API', () => {
  let gem: MockUpstream; // healthy Gemini
  let gemDown: MockUpstream; // a Gemini that answers 503
  let oai: MockUpstream; // healthy OpenAI-shaped
  let oaiDown: MockUpstream; // an OpenAI-shaped upstream that answers 500
  let h: Harness;
  let client: OpenAI;
  let dataDir: string;

  const admin = async (path: string) => {
    const res = await fetch(h.relay.adminUrl! + path, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
    return (await res.json()) as any;
  };

  beforeAll(async () => {
    [gem, gemDown, oai, oaiDown] = await Promise.all([
      startMockUpstream({ name: 'gem', apiKey: CHANNEL_KEY }),
      startMockUpstream({ name: 'gem-down', apiKey: CHANNEL_KEY, faults: { status: 503 } }),
      startMockUpstream({ name: 'oai', apiKey: CHANNEL_KEY }),
      startMockUpstream({ name: 'oai-down', apiKey: CHANNEL_KEY, faults: { status: 500 } }),
    ]);
    const docs = [
      `apiVersion: v1\nkind: Secret\nmetadata: { name: creds }\nstringData: { apiKey: ${CHANNEL_KEY} }\n`,
      'apiVersion: v1\nkind: Secret\nmetadata: { name: badcreds }\nstringData: { apiKey: not-the-key }\n',
      channel(
        'gemini',
        'gemini',
        gem.url,
        `
    - name: gemini-flash
      upstreamName: gemini-2.5-flash
    - name: gemini-embed
      upstreamName: gemini-embedding-001`,
      ),
      channel(
        'gemini-billed',
        'gemini',
        gem.url,
        `
    - name: gemini-billed
      upstreamName: gemini-2.5-pro
      pricing: { inputPer1M: "1000000", outputPer1M: "2000000", cachedInputPer1M: "500000" }`,
      ),
      channel('gemini-badkey', 'gemini', gem.url, '[{ name: gemini-badkey }]', '', 'badcreds'),
      // model "to-openai": Gemini first (down), OpenAI behind it
      channel(
        'fo-gemini',
        'gemini',
        gemDown.url,
        '[{ name: to-openai }]',
        '  priority: 0\n  cooldown: { failureThreshold: 1000 }\n', // stays a candidate: every test tries it
      ),
      channel('fo-openai', 'openai-compatible', `${oai.url}/v1`, '[{ name: to-openai }]', '  priority: 1\n'),
      // model "to-gemini": OpenAI first (down), Gemini behind it
      channel(
        'fo-openai-down',
        'openai-compatible',
        `${oaiDown.url}/v1`,
        '[{ name: to-gemini }]',
        '  priority: 0\n',
      ),
      channel('fo-gemini-up', 'gemini', gem.url, '[{ name: to-gemini }]', '  priority: 1\n'),
    ];
    dataDir = await mkdtemp(join(tmpdir(), 'kuberelay-gemini-'));
    h = await startHarness(docs.join('---\n'), {
      persistence: {
        dataDir,
        admin: { port: 0, token: ADMIN_TOKEN },
        requestLog: { flushIntervalMs: 50 },
      },
    });
    client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'client-key-not-forwarded', maxRetries: 0 });
  });
  afterAll(async () => {
    await h?.close();
    await Promise.all([gem, gemDown, oai, oaiDown].map((m) => m?.close()));
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  const weatherTool: OpenAI.ChatCompletionTool = {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  };

  it('non-stream chat: native request with x-goog-api-key, an OpenAI answer with usage', async () => {
    const { data, response } = await client.chat.completions
      .create({
        model: 'gemini-flash',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Say hello to the relay' },
        ],
        max_tokens: 5,
        temperature: 0.3,
      })
      .withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.model).toBe('gemini-flash');
    expect(data.choices[0]!.message).toMatchObject({ role: 'assistant', content: 'This is a mock response' });
    expect(data.choices[0]!.finish_reason).toBe('stop');
    expect(data.usage).toMatchObject({ prompt_tokens: 7, completion_tokens: 5, total_tokens: 12 });
    expect(response.headers.get('x-kuberelay-channel')).toBe('default/gemini');
    const last = gem.stats().last!;
    expect(last.path).toBe('/v1beta/models/gemini-2.5-flash:generateContent');
    expect(last.headers['x-goog-api-key']).toBe(CHANNEL_KEY);
    expect(last.headers.authorization).toBeUndefined();
    expect(JSON.stringify(last.headers)).not.toContain('client-key-not-forwarded');
    expect(last.body).toEqual({
      systemInstruction: { parts: [{ text: 'Be brief.' }] },
      contents: [{ role: 'user', parts: [{ text: 'Say hello to the relay' }] }],
      generationConfig: { maxOutputTokens: 5, temperature: 0.3 },
    });
  });

  it('function calling, non-stream: tool_calls out, the tool result goes back as functionResponse', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];
    const first = await client.chat.completions.create({
      model: 'gemini-flash',
      messages,
      tools: [weatherTool],
    });
    const choice = first.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    const call = choice.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call.function).toEqual({ name: 'get_weather', arguments: '{"city":"mock"}' });
    expect(call.id).toMatch(/^call_/);
    messages.push(choice.message, { role: 'tool', tool_call_id: call.id, content: '{"temp_c":21}' });
    const second = await client.chat.completions.create({
      model: 'gemini-flash',
      messages,
      tools: [weatherTool],
    });
    expect(second.choices[0]!.finish_reason).toBe('stop');
    expect(second.choices[0]!.message.content).toBeTruthy();
    const sent = gem.stats().last!.body as { contents: unknown[] };
    expect(sent.contents.slice(1)).toEqual([
      { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { city: 'mock' } } }] },
      { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { temp_c: 21 } } }] },
    ]);
  });

  it('stream: text deltas, one finish chunk, usage only when asked, [DONE] at the end', async () => {
    const parts: string[] = [];
    const finishes: string[] = [];
    const stream = await client.chat.completions.create({
      model: 'gemini-flash',
      messages: [{ role: 'user', content: 'Say hello to the relay' }],
      max_tokens: 6,
      stream: true,
    });
    for await (const ev of stream) {
      expect('usage' in ev).toBe(false);
      parts.push(ev.choices[0]?.delta.content ?? '');
      if (ev.choices[0]?.finish_reason) finishes.push(ev.choices[0].finish_reason);
    }
    expect(parts.join('')).toBe('This is a mock response from');
    expect(finishes).toEqual(['stop']);
    expect(gem.stats().last!.path).toBe('/v1beta/models/gemini-2.5-flash:streamGenerateContent');

    let usage: OpenAI.CompletionUsage | null | undefined;
    const withUsage = await client.chat.completions.create({
      model: 'gemini-flash',
      messages: [{ role: 'user', content: 'Say hello to the relay' }],
      max_tokens: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    for await (const ev of withUsage) if (ev.usage) usage = ev.usage;
    expect(usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
  });

  it('stream with a function call: the call arrives whole in tool_calls deltas, finish_reason tool_calls', async () => {
    const stream = await client.chat.completions.create({
      model: 'gemini-flash',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [weatherTool],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      stream: true,
    });
    const calls: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    let finish: string | null = null;
    for await (const ev of stream) {
      calls.push(...(ev.choices[0]?.delta.tool_calls ?? []));
      finish = ev.choices[0]?.finish_reason ?? finish;
    }
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({
      index: 0,
      type: 'function',
      function: { name: 'get_weather', arguments: '{"city":"mock"}' },
    });
    expect(finish).toBe('tool_calls');
    expect((gem.stats().last!.body as { toolConfig: unknown }).toolConfig).toEqual({
      functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_weather'] },
    });
  });

  it('embeddings: one string and several, floats and the SDK default base64, dimensions', async () => {
    const one = await client.embeddings.create({ model: 'gemini-embed', input: 'hello', dimensions: 4 });
    expect(one.object).toBe('list');
    expect(one.data).toHaveLength(1);
    expect(one.data[0]!.embedding).toHaveLength(4);
    const sent = gem.stats().last!;
    expect(sent.path).toBe('/v1beta/models/gemini-embedding-001:batchEmbedContents');
    expect(sent.body).toEqual({
      requests: [
        {
          model: 'models/gemini-embedding-001',
          content: { parts: [{ text: 'hello' }] },
          outputDimensionality: 4,
        },
      ],
    });
    const floats = await client.embeddings.create({
      model: 'gemini-embed',
      input: ['hello', 'world'],
      encoding_format: 'float',
    });
    expect(floats.data.map((d) => d.index)).toEqual([0, 1]);
    expect(floats.data[0]!.embedding).toHaveLength(8);
    // on the wire, encoding_format base64 is what OpenAI sends: little-endian float32s
    const raw = await fetch(`${h.url}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gemini-embed', input: 'hello', encoding_format: 'base64' }),
    });
    const wire = (await raw.json()) as { data: { embedding: string }[] };
    const bytes = Buffer.from(wire.data[0]!.embedding, 'base64');
    expect(bytes.length).toBe(8 * 4);
    expect(bytes.readFloatLE(0)).toBeCloseTo(floats.data[0]!.embedding[0]!, 6);
    // the SDK asks for base64 unless told otherwise and decodes it: same vectors
    const b64 = await client.embeddings.create({ model: 'gemini-embed', input: ['hello', 'world'] });
    b64.data.forEach((d, i) => {
      d.embedding.forEach((v, k) => {
        expect(v).toBeCloseTo(floats.data[i]!.embedding[k]!, 6);
      });
    });
  });

  it('what Gemini cannot say is refused with a 400 naming the field; the upstream is not called', async () => {
    const before = gem.stats().requests;
    const err = await refused(
      client.chat.completions.create({
        model: 'gemini-flash',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is this?' },
              { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } },
            ],
          },
        ],
      }),
    );
    expect(err.status).toBe(400);
    expect(err.param).toBe('messages[0].content[1].image_url.url');
    expect(err.type).toBe('invalid_request_error');
    expect(err.message).toMatch(/data: URLs/);
    expect(gem.stats().requests).toBe(before);
  });

  it("Gemini's errors reach the client in OpenAI's shape with Gemini's status", async () => {
    const err = await refused(
      client.chat.completions.create({ model: 'gemini-badkey', messages: [{ role: 'user', content: 'hi' }] }),
    );
    expect(err.status).toBe(400);
    expect(err.type).toBe('authentication_error');
    expect(err.code).toBe('invalid_api_key');
    expect((err.error as { message: string }).message).toBe(
      'API key not valid. Please pass a valid API key.',
    );
    expect(JSON.stringify(err.error)).not.toContain(CHANNEL_KEY);
  });

  it('usage and cost (cached and reasoning tokens priced) reach metrics, spend and request logs', async () => {
    const ask = () =>
      client.chat.completions.create({
        model: 'gemini-billed',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Please bill this conversation start' },
        ],
        max_tokens: 4,
        reasoning_effort: 'low',
      });
    // 7 prompt tokens; 4 answer + 8 thinking = 12 completion tokens, 8 of them reasoning.
    const first = await ask();
    expect(first.usage).toMatchObject({
      prompt_tokens_details: { cached_tokens: 0 },
      prompt_tokens: 7,
      completion_tokens: 12,
      completion_tokens_details: { reasoning_tokens: 8 },
    });
    // The same conversation start again: Gemini's implicit cache serves all 7 prompt tokens.
    const second = await ask();
    expect(second.usage?.prompt_tokens_details?.cached_tokens).toBe(7);
    const labels = (type: string) => ({ channel: 'default/gemini-billed', model: 'gemini-billed', type });
    expect(await metric(h.url, 'kuberelay_tokens_total', labels('prompt'))).toBe(14);
    expect(await metric(h.url, 'kuberelay_tokens_total', labels('completion'))).toBe(24);
    expect(await metric(h.url, 'kuberelay_tokens_total', labels('cached'))).toBe(7);
    expect(await metric(h.url, 'kuberelay_tokens_total', labels('reasoning'))).toBe(16);
    // $1 a prompt token, $0.5 a cached one, $2 a completion token: 7 + 24, then 3.5 + 24.
    const cost = 31 + 27.5;
    expect(
      await metric(h.url, 'kuberelay_cost_usd_total', {
        channel: 'default/gemini-billed',
        model: 'gemini-billed',
      }),
    ).toBeCloseTo(cost, 6);
    const spend = await admin('/admin/spend?channel=default/gemini-billed');
    expect(spend.day.live).toBeCloseTo(cost, 6);
    let logs: { cachedTokens: number; reasoningTokens: number; promptTokens: number; cost: string }[] = [];
    for (let i = 0; i < 100 && logs.length < 2; i++) {
      logs = (await admin('/admin/logs?channel=default/gemini-billed')).data;
      if (logs.length < 2) await new Promise((r) => setTimeout(r, 50));
    }
    expect(
      logs.map((l) => [l.promptTokens, l.cachedTokens, l.reasoningTokens, Number(l.cost)]).sort(),
    ).toEqual(
      [
        [7, 0, 8, 31],
        [7, 7, 8, 27.5],
      ].sort(),
    );
  });

  it('failover across providers is invisible to the client, stream included: Gemini down -> OpenAI', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'to-openai', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('This is');
    expect(response.headers.get('x-kuberelay-channel')).toBe('default/fo-openai');
    expect(response.headers.get('x-kuberelay-attempts')).toBe('2');
    const parts: string[] = [];
    const stream = await client.chat.completions.create({
      model: 'to-openai',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 3,
      stream: true,
    });
    for await (const ev of stream) parts.push(ev.choices[0]?.delta.content ?? '');
    expect(parts.join('')).toBe('This is a');
  });

  it('failover across providers, the other way: OpenAI down -> Gemini, stream included', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'to-gemini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('This is');
    expect(response.headers.get('x-kuberelay-channel')).toBe('default/fo-gemini-up');
    const parts: string[] = [];
    const finishes: string[] = [];
    const stream = await client.chat.completions.create({
      model: 'to-gemini',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 3,
      stream: true,
    });
    for await (const ev of stream) {
      parts.push(ev.choices[0]?.delta.content ?? '');
      if (ev.choices[0]?.finish_reason) finishes.push(ev.choices[0].finish_reason);
    }
    expect(parts.join('')).toBe('This is a');
    expect(finishes).toEqual(['stop']);
  });

  it('a Gemini stream that ends before its first token fails over to OpenAI', async () => {
    gemDown.setFaults({ streamDieAfter: 0 });
    try {
      const { data: stream, response } = await client.chat.completions
        .create({
          model: 'to-openai',
          messages: [{ role: 'user', content: 'hi' }],
          max_tokens: 3,
          stream: true,
        })
        .withResponse();
      let text = '';
      for await (const ev of stream) text += ev.choices[0]?.delta.content ?? '';
      expect(text).toBe('This is a');
      expect(response.headers.get('x-kuberelay-channel')).toBe('default/fo-openai');
      expect(response.headers.get('x-kuberelay-attempts')).toBe('2');
    } finally {
      gemDown.setFaults({ status: 503 });
    }
  });

  it('a Gemini stream that dies after its first token ends with an error event, never a fake [DONE]', async () => {
    gemDown.setFaults({ streamDieAfter: 2 });
    try {
      const stream = await client.chat.completions.create({
        model: 'to-openai',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 5,
        stream: true,
      });
      let text = '';
      const read = async () => {
        for await (const ev of stream) text += ev.choices[0]?.delta.content ?? '';
      };
      await expect(read()).rejects.toThrow();
      expect(text).toBe('This is'); // what Gemini sent before it died, and nothing from another channel
    } finally {
      gemDown.setFaults({ status: 503 });
    }
  });
});
