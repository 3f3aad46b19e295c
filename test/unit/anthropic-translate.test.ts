// What the anthropic translation refuses (a 400 naming the field, never a silent drop), and its
// invariants over generated conversations and streams.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toNativeChat } from '../../providers/anthropic/request.ts';
import { finishReason } from '../../providers/anthropic/response.ts';
import { AnthropicChatStream } from '../../providers/anthropic/stream.ts';
import { UntranslatableError } from '../../providers/contract.ts';
import { adapterFor } from '../../providers/index.ts';

const base = { model: 'm', messages: [{ role: 'user', content: 'Hi' }] };
const to = (extra: Record<string, unknown>) =>
  toNativeChat({ ...base, ...extra }, { upstreamModel: 'claude' });

function refusedParam(extra: Record<string, unknown>): string | undefined {
  try {
    to(extra);
  } catch (e) {
    if (e instanceof UntranslatableError) return e.field;
    throw e;
  }
  return undefined;
}

describe('anthropic request: refused with the field named', () => {
  const refused: Array<[Record<string, unknown>, string]> = [
    [{ n: 2 }, 'n'],
    [{ logprobs: true }, 'logprobs'],
    [{ top_logprobs: 2 }, 'top_logprobs'],
    [{ response_format: { type: 'json_object' } }, 'response_format'],
    [{ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: {} } } }, 'response_format'],
    [{ seed: 1 }, 'seed'],
    [{ presence_penalty: 0.5 }, 'presence_penalty'],
    [{ frequency_penalty: 0.5 }, 'frequency_penalty'],
    [{ logit_bias: { '50256': -100 } }, 'logit_bias'],
    [{ temperature: 1.5 }, 'temperature'],
    [{ audio: { voice: 'alloy', format: 'mp3' } }, 'audio'],
    [{ modalities: ['text', 'audio'] }, 'modalities'],
    [{ reasoning_effort: 'high' }, 'reasoning_effort'],
    [{ functions: [] }, 'functions'],
    [{ some_vendor_extension: true }, 'some_vendor_extension'],
    [{ tools: [{ type: 'function', function: { name: 'f', strict: true } }] }, 'tools[0].function.strict'],
    [{ tools: [{ type: 'custom', custom: { name: 'f' } }] }, 'tools[0].type'],
    [
      { messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: {} }] }] },
      'messages[0].content[0].type',
    ],
    [
      {
        messages: [
          {
            role: 'user',
            content: [{ type: 'image_url', image_url: { url: 'https://x/y.png', detail: 'high' } }],
          },
        ],
      },
      'messages[0].content[0].image_url.detail',
    ],
    [
      { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'ftp://x/y.png' } }] }] },
      'messages[0].content[0].image_url.url',
    ],
    [{ messages: [{ role: 'user', name: 'bob', content: 'Hi' }] }, 'messages[0].name'],
    [{ messages: [{ role: 'function', name: 'f', content: '1' }] }, 'messages[0].name'],
    [
      {
        messages: [
          {
            role: 'assistant',
            tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: '{' } }],
          },
        ],
      },
      'messages[0].tool_calls[0].function.arguments',
    ],
    [{ messages: [] }, 'messages'],
  ];
  for (const [extra, param] of refused) {
    it(`${JSON.stringify(extra).slice(0, 90)} -> ${param}`, () => {
      expect(refusedParam(extra)).toBe(param);
    });
  }

  it('defaults that Messages means too are accepted', () => {
    for (const extra of [
      { n: 1 },
      { logprobs: false },
      { presence_penalty: 0 },
      { response_format: { type: 'text' } },
      { stream_options: { include_usage: true } },
      { store: false },
      { parallel_tool_calls: true },
    ]) {
      expect(refusedParam(extra)).toBeUndefined();
    }
  });

  it('cache_control on a text part is kept on its block (a prompt-cache breakpoint)', () => {
    const out = to({
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'S', cache_control: { type: 'ephemeral' } }] },
        { role: 'user', content: [{ type: 'text', text: 'U' }] },
      ],
    });
    expect(out.system).toEqual([{ type: 'text', text: 'S', cache_control: { type: 'ephemeral' } }]);
    expect(out.messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'U' }] }]);
  });

  it('max_tokens: max_completion_tokens wins, else max_tokens, else the documented default', () => {
    expect(to({ max_completion_tokens: 7, max_tokens: 9 }).max_tokens).toBe(7);
    expect(to({ max_tokens: 9 }).max_tokens).toBe(9);
    expect(to({}).max_tokens).toBe(4096);
  });

  it('tool_choice: auto, none, required, a function', () => {
    const tools = [{ type: 'function', function: { name: 'f' } }];
    expect(to({ tools, tool_choice: 'auto' }).tool_choice).toEqual({ type: 'auto' });
    expect(to({ tools, tool_choice: 'none' }).tool_choice).toEqual({ type: 'none' });
    expect(to({ tools, tool_choice: 'required' }).tool_choice).toEqual({ type: 'any' });
    expect(to({ tools, tool_choice: { type: 'function', function: { name: 'f' } } }).tool_choice).toEqual({
      type: 'tool',
      name: 'f',
    });
    expect(to({ tools, parallel_tool_calls: false }).tool_choice).toEqual({
      type: 'auto',
      disable_parallel_tool_use: true,
    });
    expect(to({ tools }).tools).toEqual([{ name: 'f', input_schema: { type: 'object', properties: {} } }]);
  });
});

describe('anthropic stop reasons', () => {
  it('maps every documented stop reason', () => {
    expect(finishReason('end_turn')).toBe('stop');
    expect(finishReason('stop_sequence')).toBe('stop');
    expect(finishReason('max_tokens')).toBe('length');
    expect(finishReason('tool_use')).toBe('tool_calls');
    expect(finishReason('refusal')).toBe('content_filter');
  });
});

interface Msg {
  role: string;
  content?: string | null;
  tool_call_id?: string;
  tool_calls?: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }>;
}
const role = fc.constantFrom('system', 'developer', 'user', 'assistant', 'tool');
const message: fc.Arbitrary<Msg> = role.chain(
  (r): fc.Arbitrary<Msg> =>
    r === 'tool'
      ? fc.record({ role: fc.constant(r), tool_call_id: fc.string({ minLength: 1 }), content: fc.string() })
      : r === 'assistant'
        ? fc.record({
            role: fc.constant(r),
            content: fc.option(fc.string(), { nil: null }),
            tool_calls: fc.option(
              fc.array(
                fc.record({
                  id: fc.string({ minLength: 1 }),
                  type: fc.constant('function'),
                  function: fc.record({
                    name: fc.string({ minLength: 1 }),
                    arguments: fc.dictionary(fc.string(), fc.jsonValue()).map((o) => JSON.stringify(o)),
                  }),
                }),
                { minLength: 1, maxLength: 3 },
              ),
              { nil: undefined },
            ),
          })
        : fc.record({ role: fc.constant(r), content: fc.string({ minLength: 1 }) }),
);

describe('anthropic translation invariants', () => {
  it('turns alternate, none is empty, and every text and tool call survives in order', () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 12 }), (messages) => {
        // biome-ignore lint/suspicious/noExplicitAny: generated JSON
        const out = toNativeChat({ model: 'm', messages }, { upstreamModel: 'c' }) as any;
        for (let i = 1; i < out.messages.length; i++)
          expect(out.messages[i].role).not.toBe(out.messages[i - 1].role);
        for (const t of out.messages) expect(t.content.length).toBeGreaterThan(0);
        const said = messages.flatMap((m) =>
          m.role === 'tool'
            ? [`result:${m.tool_call_id}:${m.content}`]
            : m.role === 'assistant'
              ? [
                  ...(m.content ? [`text:${m.content}`] : []),
                  ...(m.tool_calls ?? []).map((c) => `call:${c.id}:${c.function.arguments}`),
                ]
              : m.role === 'user'
                ? [`text:${m.content}`]
                : [],
        );
        // biome-ignore lint/suspicious/noExplicitAny: generated JSON
        const got = out.messages.flatMap((t: any) =>
          // biome-ignore lint/suspicious/noExplicitAny: generated JSON
          t.content.map((b: any) =>
            b.type === 'text'
              ? `text:${b.text}`
              : b.type === 'tool_use'
                ? `call:${b.id}:${JSON.stringify(b.input)}`
                : `result:${b.tool_use_id}:${b.content}`,
          ),
        );
        expect(got).toEqual(said);
        const sys = messages
          .filter((m) => m.role === 'system' || m.role === 'developer')
          .map((m) => m.content);
        // biome-ignore lint/suspicious/noExplicitAny: generated JSON
        expect((out.system ?? []).map((b: any) => b.text)).toEqual(sys);
      }),
    );
  });

  it('a stream cut anywhere into deltas gives back the text and the tool arguments exactly', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string(), { maxLength: 8 }),
        fc.array(fc.string(), { maxLength: 8 }),
        (textParts, argParts) => {
          const s = new AnthropicChatStream({ model: 'm', includeUsage: true });
          const ev = (type: string, body: object) => s.push(type, JSON.stringify({ type, ...body }));
          const chunks = [
            ...ev('message_start', {
              message: { id: 'msg_1', usage: { input_tokens: 3, output_tokens: 1 } },
            }),
            ...ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
            ...textParts.flatMap((t) =>
              ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: t } }),
            ),
            ...ev('ping', {}),
            ...ev('content_block_start', {
              index: 1,
              content_block: { type: 'tool_use', id: 'toolu_1', name: 'f', input: {} },
            }),
            ...argParts.flatMap((p) =>
              ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: p } }),
            ),
            ...ev('message_delta', { delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 9 } }),
            ...ev('message_stop', {}),
          ].map((c) => JSON.parse(c));
          const deltas = chunks.filter((c) => c.choices.length > 0).map((c) => c.choices[0].delta);
          expect(deltas.map((d) => d.content ?? '').join('')).toBe(textParts.join(''));
          const calls = deltas.flatMap((d) => d.tool_calls ?? []);
          expect(calls.map((c) => c.function.arguments).join('')).toBe(argParts.join(''));
          expect(calls[0]).toMatchObject({ index: 0, id: 'toolu_1', function: { name: 'f' } });
          expect(calls.slice(1).every((c) => c.id === undefined && c.index === 0)).toBe(true);
          expect(chunks.at(-1).usage).toMatchObject({ prompt_tokens: 3, completion_tokens: 9 });
        },
      ),
    );
  });
});

describe('anthropic adapter', () => {
  const ch = (basePath: string) => ({
    baseURL: `https://api.anthropic.com${basePath}`,
    basePath,
    apiKey: 'sk-ant-1',
  });
  const ctx = { operation: 'chat' as const, upstreamModel: 'claude', stream: false };
  it('x-api-key and anthropic-version; /v1/messages whether baseURL ends in /v1 or not', () => {
    const a = adapterFor('anthropic');
    expect(a.auth(ch(''))).toEqual({ 'x-api-key': 'sk-ant-1', 'anthropic-version': '2023-06-01' });
    expect(a.url(ch(''), ctx)).toBe('/v1/messages');
    expect(a.url(ch('/v1'), ctx)).toBe('/v1/messages');
    expect(a.url(ch('/proxy/anthropic'), ctx)).toBe('/proxy/anthropic/v1/messages');
    expect(a.supports('chat')).toBe(true);
    expect(a.supports('embeddings')).toBe(false);
    expect(a.retryable?.(529)).toBe(true);
    for (const s of [400, 429, 500, 503]) expect(a.retryable?.(s)).toBeUndefined(); // the channel's onStatus
  });
});
