import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CreatedKey } from '../../core/keys/api-key.ts';
import { completionText } from '../../mock-upstream/content.ts';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import { type Backend, startBackend } from '../helpers/backends.ts';
import { configYaml, type Harness, metric, startHarness, startMocks } from '../helpers/harness.ts';
import { refused } from '../helpers/sdk-errors.ts';

// The Responses API through the relay, with the official openai SDK as the client and client keys
// on (the default): natively to openai and azure-openai channels (ids pinned to the channel that
// made them), translated through chat completions to anthropic, gemini and openai-compatible ones.

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';
const weather = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'Get the current weather in a given location',
  parameters: {
    type: 'object',
    properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
    required: ['location', 'unit'],
  },
  strict: false,
};

describe('the Responses API (native, pinned, translated)', () => {
  let backend: Backend;
  let main: MockUpstream;
  let a: MockUpstream;
  let b: MockUpstream;
  let h: Harness;
  let alice: OpenAI;
  let bob: OpenAI;

  const channels = (withNative = true) =>
    configYaml([
      ...(withNative
        ? [
            {
              name: 'native',
              mock: main,
              provider: 'openai',
              models: `[{ name: gpt-4o-mini, upstreamName: gpt-4o-mini-2024-07-18, pricing: { inputPer1M: "1000000", cachedInputPer1M: "0", outputPer1M: "1000000" } }]`,
            },
          ]
        : []),
      { name: 'spare', mock: main, provider: 'openai', models: '[{ name: other-model }]' },
      {
        name: 'claude',
        baseURL: main.url,
        provider: 'anthropic',
        models: '[{ name: claude, upstreamName: claude-sonnet-4-20250514 }]',
      },
      {
        name: 'gem',
        baseURL: main.url,
        provider: 'gemini',
        models: '[{ name: gem, upstreamName: gemini-2.0-flash }]',
      },
      { name: 'compat', mock: main, provider: 'openai-compatible', models: '[{ name: vllm }]' },
      {
        name: 'az',
        baseURL: main.url,
        provider: 'azure-openai',
        models: '[{ name: az, upstreamName: my-deployment }]',
      },
      {
        name: 'az-dated',
        baseURL: main.url,
        provider: 'azure-openai',
        models: '[{ name: az-dated, upstreamName: my-deployment }]',
        extra: '  azure: { apiVersion: 2025-04-01-preview }\n',
      },
      {
        name: 'fo-a',
        mock: a,
        provider: 'openai',
        priority: 0,
        models: '[{ name: gpt-4o }]',
        extra: '  timeouts: { firstToken: 300ms }\n',
      },
      { name: 'fo-b', mock: b, provider: 'openai', priority: 1, models: '[{ name: gpt-4o }]' },
    ]);

  beforeAll(async () => {
    backend = await startBackend('pglite');
    [main, a, b] = (await startMocks(['main', 'a', 'b'])) as [MockUpstream, MockUpstream, MockUpstream];
    const { dataDir } = await backend.fresh();
    h = await startHarness(channels(), {
      auth: 'keys',
      persistence: { databaseUrl: undefined, dataDir, admin: { port: 0, token: ADMIN_TOKEN } },
    });
    const key = async (name: string) => {
      const res = await fetch(`${h.relay.adminUrl}/admin/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name }),
      });
      expect(res.status).toBe(201);
      return ((await res.json()) as CreatedKey).secret;
    };
    alice = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: await key('alice'), maxRetries: 0 });
    bob = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: await key('bob'), maxRetries: 0 });
  }, 180_000); // the embedded database's first start is slow on a busy machine
  afterEach(() => {
    for (const m of [main, a, b]) {
      m.setFaults(null);
      m.resetStats();
    }
  });
  afterAll(async () => {
    await h?.close();
    await Promise.all([main, a, b].map((m) => m?.close()));
    await backend?.close();
  });

  describe('native (openai channel)', () => {
    it('responses.create: the answer in OpenAI shape, the model renamed upstream, usage billed', async () => {
      const { data, response } = await alice.responses
        .create({
          model: 'gpt-4o-mini',
          input: 'Tell me a three sentence bedtime story',
          max_output_tokens: 5,
        })
        .withResponse();
      expect(data.object).toBe('response');
      expect(data.id).toMatch(/^resp_/);
      expect(data.output_text).toBe(completionText(5));
      expect(data.usage).toMatchObject({ input_tokens: 7, output_tokens: 5 });
      expect(response.headers.get('x-kuberelay-channel')).toBe('default/native');
      expect(main.stats().last).toMatchObject({
        path: '/v1/responses',
        body: { model: 'gpt-4o-mini-2024-07-18' },
      });
      expect(main.stats().last!.body).not.toHaveProperty('stream_options');
    });

    it('cached and reasoning tokens are billed as the upstream reports them', async () => {
      const labels = { channel: 'default/native', model: 'gpt-4o-mini' };
      const before = {
        cached: await metric(h.url, 'kuberelay_tokens_total', { ...labels, type: 'cached' }),
        reasoning: await metric(h.url, 'kuberelay_tokens_total', { ...labels, type: 'reasoning' }),
        cost: await metric(h.url, 'kuberelay_cost_usd_total', labels),
      };
      // 4 input words (2 cached), 3 + 2 reasoning output tokens; input and output at $1 a token.
      const r = await alice.responses.create({
        model: 'gpt-4o-mini',
        input: 'one two three four',
        max_output_tokens: 3,
        prompt_cache_key: 'k',
        reasoning: { effort: 'low' },
      });
      expect(r.usage).toMatchObject({
        input_tokens_details: { cached_tokens: 2 },
        output_tokens_details: { reasoning_tokens: 2 },
      });
      expect(await metric(h.url, 'kuberelay_tokens_total', { ...labels, type: 'cached' })).toBe(
        before.cached + 2,
      );
      expect(await metric(h.url, 'kuberelay_tokens_total', { ...labels, type: 'reasoning' })).toBe(
        before.reasoning + 2,
      );
      expect(await metric(h.url, 'kuberelay_cost_usd_total', labels)).toBeCloseTo(before.cost + 2 + 5, 6);
    });

    it('responses.stream(): the SDK accepts the events; finalResponse() and output_text', async () => {
      const stream = alice.responses.stream({
        model: 'gpt-4o-mini',
        input: 'Say hello',
        max_output_tokens: 4,
      });
      const types: string[] = [];
      let text = '';
      stream.on('response.output_text.delta', (e) => {
        text += e.delta;
      });
      for await (const e of stream) types.push(e.type);
      const final = await stream.finalResponse();
      expect(final.output_text).toBe(completionText(4));
      expect(text).toBe(completionText(4));
      expect(types[0]).toBe('response.created');
      expect(types.at(-1)).toBe('response.completed');
      expect(final.usage?.output_tokens).toBe(4);
    });

    it('a function-calling round trip', async () => {
      const first = await alice.responses.create({
        model: 'gpt-4o-mini',
        input: 'Weather in Paris?',
        tools: [weather],
        tool_choice: 'required',
      });
      const call = first.output.find((o) => o.type === 'function_call');
      expect(call).toMatchObject({ type: 'function_call', name: 'get_weather' });
      expect(JSON.parse((call as { arguments: string }).arguments)).toEqual({
        location: 'mock',
        unit: 'celsius',
      });
      const second = await alice.responses.create({
        model: 'gpt-4o-mini',
        previous_response_id: first.id,
        input: [
          {
            type: 'function_call_output',
            call_id: (call as { call_id: string }).call_id,
            output: '{"temp": 21}',
          },
        ],
        tools: [weather],
      });
      expect(second.output_text).toBe(completionText(8));
      expect(second.previous_response_id).toBe(first.id);
    });

    it('retrieve, input_items, delete through the pin; other keys and unknown ids get 404', async () => {
      const created = await alice.responses.create({ model: 'gpt-4o-mini', input: 'Remember me' });
      const got = await alice.responses.retrieve(created.id);
      expect(got.id).toBe(created.id);
      expect(got.output_text).toBe(created.output_text);
      const items = await alice.responses.inputItems.list(created.id);
      expect(items.data).toHaveLength(1);
      expect(items.data[0]).toMatchObject({
        type: 'message',
        role: 'user',
        content: [{ type: 'input_text', text: 'Remember me' }],
      });

      const other = await refused(bob.responses.retrieve(created.id));
      expect(other.status).toBe(404);
      expect(other.error).toMatchObject({ type: 'invalid_request_error', code: 'response_not_found' });
      expect((await refused(bob.responses.delete(created.id))).status).toBe(404);
      expect(
        (
          await refused(
            bob.responses.create({ model: 'gpt-4o-mini', input: 'x', previous_response_id: created.id }),
          )
        ).status,
      ).toBe(404);
      expect((await refused(alice.responses.retrieve('resp_unknown'))).status).toBe(404);

      await alice.responses.delete(created.id);
      const gone = await refused(alice.responses.retrieve(created.id));
      expect(gone.status).toBe(404);
    });

    it('background: queued, then cancelled through the pin', async () => {
      const r = await alice.responses.create({
        model: 'gpt-4o-mini',
        input: 'A long task',
        background: true,
      });
      expect(r.status).toBe('queued');
      const c = await alice.responses.cancel(r.id);
      expect(c.status).toBe('cancelled');
      expect((await alice.responses.retrieve(r.id)).status).toBe('cancelled');
    });

    it('store: false is not pinned (nothing upstream to find)', async () => {
      const r = await alice.responses.create({ model: 'gpt-4o-mini', input: 'Forget me', store: false });
      expect((await refused(alice.responses.retrieve(r.id))).status).toBe(404);
    });

    it('a response whose channel left the config: 404 that names it, no other upstream asked', async () => {
      const r = await alice.responses.create({ model: 'gpt-4o-mini', input: 'Soon orphaned' });
      await h.writeConfig(channels(false));
      try {
        main.resetStats();
        const err = await refused(alice.responses.retrieve(r.id));
        expect(err.status).toBe(404);
        expect(err.error).toMatchObject({ code: 'response_channel_gone' });
        expect(err.message).toContain('default/native');
        expect(main.stats().requests).toBe(0);
      } finally {
        await h.writeConfig(channels());
      }
    });

    it('fails over before the first byte (JSON and stream)', async () => {
      a.setFaults({ status: 503, count: 1 });
      const { data, response } = await alice.responses
        .create({ model: 'gpt-4o', input: 'hi' })
        .withResponse();
      expect(data.output_text).toBe(completionText(8));
      expect(response.headers.get('x-kuberelay-channel')).toBe('default/fo-b');
      expect(response.headers.get('x-kuberelay-attempts')).toBe('2');
      // a's stream stalls after response.created: the preamble is held, so b can still serve it
      a.setFaults({ preambleThenStallMs: 10_000, count: 1 });
      const { data: events, response: streamed } = await alice.responses
        .create({ model: 'gpt-4o', input: 'hi', stream: true })
        .withResponse();
      expect(streamed.headers.get('x-kuberelay-channel')).toBe('default/fo-b');
      let final: OpenAI.Responses.Response | undefined;
      for await (const e of events) if (e.type === 'response.completed') final = e.response;
      expect(final!.output.length).toBe(1);
      // the retrieval goes to b, which made it
      const got = await alice.responses.retrieve(final!.id).withResponse();
      expect(got.response.headers.get('x-kuberelay-channel')).toBe('default/fo-b');
      expect(got.data.output_text).toBe(completionText(8));
    });

    it('a stream cut after its first token ends with an error event (no failover, no fake completion), billed', async () => {
      const labels = { channel: 'default/fo-a', model: 'gpt-4o' };
      const before = await metric(h.url, 'kuberelay_tokens_total', { ...labels, type: 'completion' });
      a.setFaults({ streamDieAfter: 2, count: 1 });
      const stream = alice.responses.stream({ model: 'gpt-4o', input: 'hi' });
      const types: string[] = [];
      const err = await (async () => {
        try {
          for await (const e of stream) types.push(e.type);
        } catch (e) {
          return e as Error;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(OpenAI.APIError);
      expect(err!.message).toMatch(/upstream stream/);
      expect(types).toContain('response.output_text.delta');
      expect(types).not.toContain('response.completed');
      expect(b.stats().requests).toBe(0);
      // what was streamed is billed (estimated: the upstream's usage never came)
      expect(
        await metric(h.url, 'kuberelay_tokens_total', { ...labels, type: 'completion' }),
      ).toBeGreaterThan(before);
    });

    it('azure-openai: /openai/v1/responses, and /openai/responses?api-version= for a dated version', async () => {
      const v1 = await alice.responses.create({ model: 'az', input: 'hi' });
      expect(main.stats().last).toMatchObject({
        path: '/openai/v1/responses',
        body: { model: 'my-deployment' },
      });
      expect(main.stats().last!.headers['api-key']).toBeDefined();
      expect((await alice.responses.retrieve(v1.id)).id).toBe(v1.id);
      expect(main.stats().last!.path).toBe(`/openai/v1/responses/${v1.id}`);
      const dated = await alice.responses.stream({ model: 'az-dated', input: 'hi' }).finalResponse();
      expect(main.stats().last!.path).toBe('/openai/responses');
      expect((await alice.responses.retrieve(dated.id)).id).toBe(dated.id);
      expect(main.stats().last!.path).toBe(`/openai/responses/${dated.id}`);
    });
  });

  describe('translated through chat completions', () => {
    for (const model of ['claude', 'gem', 'vllm']) {
      it(`${model}: create and stream in OpenAI's shapes; not stored`, async () => {
        const { data, response } = await alice.responses
          .create({ model, instructions: 'Be brief', input: 'Say hello', max_output_tokens: 3 })
          .withResponse();
        expect(data.object).toBe('response');
        expect(data.output_text).toBe(completionText(3));
        expect((data as unknown as { store: boolean }).store).toBe(false);
        expect(data.usage?.output_tokens).toBe(3);
        expect(response.headers.get('x-kuberelay-channel')).toMatch(/^default\//);
        const stream = alice.responses.stream({ model, input: 'Say hello', max_output_tokens: 4 });
        const final = await stream.finalResponse();
        expect(final.output_text).toBe(completionText(4));
        expect(final.usage?.output_tokens).toBe(4);
        expect((await refused(alice.responses.retrieve(data.id))).status).toBe(404);
      });
    }

    it('anthropic: a function-calling round trip, streamed and not', async () => {
      const first = await alice.responses.create({
        model: 'claude',
        input: 'Weather in Paris?',
        tools: [weather],
        tool_choice: 'required',
      });
      const call = first.output.find(
        (o) => o.type === 'function_call',
      ) as OpenAI.Responses.ResponseFunctionToolCall;
      expect(call).toMatchObject({ name: 'get_weather' });
      expect(JSON.parse(call.arguments)).toEqual({ location: 'mock', unit: 'celsius' });
      expect(main.stats().last!.body).toMatchObject({ tool_choice: { type: 'any' } });

      const streamed = await alice.responses
        .stream({ model: 'claude', input: 'Weather in Paris?', tools: [weather], tool_choice: 'required' })
        .finalResponse();
      const scall = streamed.output.find(
        (o) => o.type === 'function_call',
      ) as OpenAI.Responses.ResponseFunctionToolCall;
      expect(JSON.parse(scall.arguments)).toEqual({ location: 'mock', unit: 'celsius' });

      const second = await alice.responses.create({
        model: 'claude',
        tools: [weather],
        input: [
          { role: 'user', content: 'Weather in Paris?' },
          { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
          { type: 'function_call_output', call_id: call.call_id, output: '{"temp": 21}' },
        ],
      });
      expect(second.output_text).toBe(completionText(8));
      const sent = main.stats().last!.body as { messages: { role: string; content: { type: string }[] }[] };
      expect(sent.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
      expect(sent.messages[2]!.content[0]!.type).toBe('tool_result');
    });

    it('previous_response_id, background and built-in tools: 400 in OpenAI shape naming the field', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ previous_response_id: 'resp_123' }, 'previous_response_id'],
        [{ background: true }, 'background'],
        [{ tools: [{ type: 'web_search' }] }, 'tools[0].type'],
      ];
      for (const [extra, param] of cases) {
        main.resetStats();
        const err = await refused(
          alice.responses.create({
            model: 'claude',
            input: 'hi',
            ...extra,
          } as OpenAI.Responses.ResponseCreateParamsNonStreaming),
        );
        expect(err.status).toBe(400);
        expect(err.error).toMatchObject({
          type: 'invalid_request_error',
          code: 'unsupported_parameter',
          param,
        });
        expect(err.message).toContain('default/claude');
        expect(main.stats().requests).toBe(0);
      }
    });
  });

  it('RateLimitPolicies match the route: a third request in a minute is a 429 in OpenAI shape', async () => {
    const policy = `apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: responses }
spec:
  match: { paths: [/v1/responses] }
  limitBy: apiKey
  limits: [{ requests: 2, per: 1m }]
`;
    await h.writeConfig(configYaml([{ name: 'native', mock: main, provider: 'openai' }], policy));
    try {
      for (let i = 0; i < 2; i++) await bob.responses.create({ model: 'gpt-4o-mini', input: 'x' });
      const err = await refused(bob.responses.create({ model: 'gpt-4o-mini', input: 'x' }));
      expect(err.status).toBe(429);
      expect(err.error).toMatchObject({ code: 'rate_limit_exceeded' });
      expect(err.headers?.get('retry-after')).toBeTruthy();
      // another route is not counted
      expect(
        (
          await bob.chat.completions.create({
            model: 'gpt-4o-mini',
            messages: [{ role: 'user', content: 'x' }],
          })
        ).object,
      ).toBe('chat.completion');
    } finally {
      await h.writeConfig(channels());
    }
  });
});
