// The Messages ingress's pure parts: Messages requests -> chat completions, chat answers and
// streams -> Messages (checked against Anthropic's documented streams), the native stream watcher
// (bytes through unchanged, whatever the chunking and line endings), count_tokens' estimate.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { anthropic } from '../../providers/anthropic/index.ts';
import { estimateInputTokens } from '../../providers/anthropic/ingress/count.ts';
import { chatFromMessages } from '../../providers/anthropic/ingress/request.ts';
import { messageFromChat } from '../../providers/anthropic/ingress/response.ts';
import { UntranslatableError } from '../../providers/contract.ts';
import { gemini } from '../../providers/gemini/index.ts';
import { openai } from '../../providers/openai/index.ts';
import { SseParser } from '../../providers/sse.ts';
import { TranslatedStream } from '../../relay/client-stream.ts';
import { messagesIngress } from '../../relay/ingress/messages.ts';
import { NativeMessagesStream } from '../../relay/ingress/native-stream.ts';
import { chatCompletion, chatStream } from '../helpers/openai-examples.ts';

type Json = Record<string, unknown>;

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/providers/anthropic/${name}`, import.meta.url), 'utf8'));

const ctx = { operation: 'messages' as const, upstreamModel: 'gpt-4o-mini', stream: false };
const translator = () => messagesIngress.plan(openai, 'messages').translator!;

/** Text cut into pieces at the given offsets (sorted, deduplicated). */
function cut(text: string, at: number[]): string[] {
  const points = [...new Set(at.map((a) => a % (text.length + 1)))].sort((a, b) => a - b);
  const out: string[] = [];
  let from = 0;
  for (const p of points) {
    out.push(text.slice(from, p));
    from = p;
  }
  out.push(text.slice(from));
  return out;
}

const ending = fc.constantFrom('\n', '\r\n', '\r');

/** OpenAI chunks as SSE the way peers frame them, through the translated stream, out as events. */
function translate(chunks: unknown[], nl: string, at: number[]): { text: string; stream: TranslatedStream } {
  const sse = `${chunks.map((c) => `data: ${JSON.stringify(c)}${nl}${nl}`).join('')}data: [DONE]${nl}${nl}`;
  const stream = new TranslatedStream(translator().stream!({ model: 'claude-x', includeUsage: true }));
  let text = '';
  for (const piece of cut(sse, at)) text += stream.push(Buffer.from(piece));
  return { text: text + stream.finish(), stream };
}

function events(text: string): { event: string | undefined; data: Json }[] {
  const p = new SseParser();
  return [...p.push(text), ...p.end()].map((e) => ({ event: e.event, data: JSON.parse(e.data) as Json }));
}

/** What an SDK makes of Messages events: the content blocks, stop reason and usage. */
function accumulate(evs: { event: string | undefined; data: Json }[]) {
  const blocks: Json[] = [];
  const json: string[] = [];
  let stop: unknown;
  let usage: unknown;
  for (const { event, data } of evs) {
    expect(data.type).toBe(event);
    if (event === 'content_block_start') {
      blocks[data.index as number] = { ...(data.content_block as Json) };
      json[data.index as number] = '';
    }
    if (event === 'content_block_delta') {
      const d = data.delta as Json;
      const b = blocks[data.index as number]!;
      if (d.type === 'text_delta') b.text = (b.text as string) + d.text;
      else json[data.index as number] += d.partial_json as string;
    }
    if (event === 'message_delta') {
      stop = (data.delta as Json).stop_reason;
      usage = data.usage;
    }
  }
  blocks.forEach((b, i) => {
    if (b.type === 'tool_use') b.input = JSON.parse(json[i] || '{}');
  });
  return { blocks, stop, usage };
}

describe('Messages request -> chat completions', () => {
  it("the tool-use conversation of Anthropic's guide", () => {
    // https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use
    const body = {
      model: 'claude-opus-4-1',
      max_tokens: 1024,
      system: [{ type: 'text', text: 'You are a weather bot.', cache_control: { type: 'ephemeral' } }],
      tools: [
        {
          name: 'get_weather',
          description: 'Get the current weather in a given location',
          input_schema: {
            type: 'object',
            properties: {
              location: { type: 'string', description: 'The city and state, e.g. San Francisco, CA' },
            },
            required: ['location'],
          },
        },
      ],
      tool_choice: { type: 'auto', disable_parallel_tool_use: true },
      messages: [
        { role: 'user', content: 'What is the weather like in San Francisco?' },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'I need to use get_weather.' },
            {
              type: 'tool_use',
              id: 'toolu_01A09q90qw90lq917835lq9',
              name: 'get_weather',
              input: { location: 'San Francisco, CA' },
            },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_01A09q90qw90lq917835lq9', content: '15 degrees' },
            { type: 'text', text: 'And in Celsius?' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
          ],
        },
      ],
      stop_sequences: ['\n\nHuman:'],
      metadata: { user_id: 'user-1234' },
      stream: true,
      thinking: { type: 'disabled' },
    };
    expect(chatFromMessages(body)).toEqual({
      model: 'claude-opus-4-1',
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'You are a weather bot.' }] },
        { role: 'user', content: 'What is the weather like in San Francisco?' },
        {
          role: 'assistant',
          content: 'I need to use get_weather.',
          tool_calls: [
            {
              id: 'toolu_01A09q90qw90lq917835lq9',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"location":"San Francisco, CA"}' },
            },
          ],
        },
        { role: 'tool', tool_call_id: 'toolu_01A09q90qw90lq917835lq9', content: '15 degrees' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'And in Celsius?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
          ],
        },
      ],
      max_tokens: 1024,
      stop: ['\n\nHuman:'],
      stream: true,
      user: 'user-1234',
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'Get the current weather in a given location',
            parameters: body.tools[0]!.input_schema,
          },
        },
      ],
      tool_choice: 'auto',
      parallel_tool_calls: false,
    });
  });

  it('tool choices, an error result, output_config', () => {
    const base = { model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] };
    expect(chatFromMessages({ ...base, tool_choice: { type: 'any' } }).tool_choice).toBe('required');
    expect(chatFromMessages({ ...base, tool_choice: { type: 'none' } }).tool_choice).toBe('none');
    const result = chatFromMessages({
      ...base,
      messages: [
        {
          role: 'user',
          content: [{ type: 'tool_result', tool_use_id: 't1', is_error: true, content: 'no such city' }],
        },
      ],
    });
    expect(result.messages).toEqual([{ role: 'tool', tool_call_id: 't1', content: 'Error: no such city' }]);
    const schema = { type: 'object', properties: { a: { type: 'string' } } };
    expect(
      chatFromMessages({
        ...base,
        output_config: { effort: 'high', format: { type: 'json_schema', schema } },
      }),
    ).toMatchObject({
      reasoning_effort: 'high',
      response_format: { type: 'json_schema', json_schema: { name: 'output', schema } },
    });
  });

  it.each([
    ['top_k', { top_k: 5 }],
    ['thinking', { thinking: { type: 'enabled', budget_tokens: 2048 } }],
    ['max_tokens', { max_tokens: undefined }],
    ['tools[0].type', { tools: [{ type: 'web_search_20250305', name: 'web_search' }] }],
    [
      'messages[0].content[0].type',
      { messages: [{ role: 'user', content: [{ type: 'document', source: {} }] }] },
    ],
    ['output_config.effort', { output_config: { effort: 'max' } }],
    ['inference_geo', { inference_geo: 'us' }],
  ])('refuses %s by name', (field, extra) => {
    const body = { model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], ...extra };
    let err: unknown;
    try {
      chatFromMessages(body);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UntranslatableError);
    expect((err as UntranslatableError).field).toBe(field);
  });
});

describe('chat answer -> Message', () => {
  it("OpenAI's documented chat completion: text, stop reason, cached tokens outside input_tokens", () => {
    expect(messageFromChat(chatCompletion, { model: 'claude-x' })).toEqual({
      id: 'msg_chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG',
      type: 'message',
      role: 'assistant',
      model: 'claude-x',
      content: [{ type: 'text', text: chatCompletion.choices[0]!.message.content }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: {
        input_tokens: 93,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 1024,
        output_tokens: 46,
      },
    });
  });

  it('through a translating channel (gemini): the native answer comes back as a Message', () => {
    const t = messagesIngress.plan(gemini, 'messages').translator!;
    const native = {
      candidates: [{ content: { role: 'model', parts: [{ text: 'Hi!' }] }, finishReason: 'MAX_TOKENS' }],
      usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 2, totalTokenCount: 7 },
    };
    const body = t.response(native, { model: 'claude-x', includeUsage: false }) as Json;
    expect(body).toMatchObject({
      content: [{ type: 'text', text: 'Hi!' }],
      stop_reason: 'max_tokens',
      usage: { input_tokens: 5, output_tokens: 2 },
    });
    expect(t.usage(native)).toMatchObject({ promptTokens: 5, completionTokens: 2 });
  });

  it('plans: native to anthropic (with its count), translated through chat for the others', () => {
    expect(messagesIngress.plan(anthropic, 'messages')).toMatchObject({
      operation: 'messages',
      translator: undefined,
    });
    expect(messagesIngress.plan(anthropic, 'count_tokens').native?.unbilled).toBe(true);
    expect(messagesIngress.plan(openai, 'messages').operation).toBe('chat');
    expect(() => messagesIngress.plan(openai, 'count_tokens')).toThrow(UntranslatableError);
    const body = translator().request(
      { model: 'x', max_tokens: 3, messages: [{ role: 'user', content: 'hi' }], stream: true },
      {
        ...ctx,
        stream: true,
      },
    ) as Json;
    expect(body).toMatchObject({
      model: 'gpt-4o-mini',
      stream: true,
      stream_options: { include_usage: true },
    });
  });
});

describe('chat stream -> Messages events', () => {
  it("OpenAI's documented stream, any chunking and line ending, as Anthropic streams a text answer", () => {
    fc.assert(
      fc.property(ending, fc.array(fc.nat(), { maxLength: 12 }), (nl, at) => {
        const { text, stream } = translate(chatStream, nl, at);
        expect(stream.done).toBe(true);
        expect(text).not.toContain('[DONE]');
        const evs = events(text);
        expect(evs.map((e) => e.event)).toEqual([
          'message_start',
          'ping',
          'content_block_start',
          'content_block_delta',
          'content_block_delta',
          'content_block_stop',
          'message_delta',
          'message_stop',
        ]);
        expect(evs[0]!.data.message).toMatchObject({
          type: 'message',
          role: 'assistant',
          model: 'claude-x',
          content: [],
        });
        expect(accumulate(evs)).toEqual({
          blocks: [{ type: 'text', text: 'Hello!' }],
          stop: 'end_turn',
          usage: {
            input_tokens: 9,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
            output_tokens: 12,
          },
        });
        expect(stream.usage()).toMatchObject({ promptTokens: 9, completionTokens: 12 });
      }),
      { numRuns: 60 },
    );
  });

  it("the chat form of Anthropic's documented tool-use stream comes back as the documented events", () => {
    const doc = fixture('stream-tool-use.json');
    const head = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini' };
    const chunks = [
      ...doc.expected.chunks.map((c: Json) => ({ ...head, choices: [{ index: 0, logprobs: null, ...c }] })),
      { ...head, choices: [], usage: doc.expected.usage },
    ];
    const ours = events(translate(chunks, '\n', []).text);
    // Compared without what only the upstream knows (ids, model, usage) and without the pings
    // and empty partial_json deltas, which carry nothing.
    const shape = (evs: { event: string | undefined; data: Json }[]) =>
      evs
        .filter((e) => e.event !== 'ping')
        .filter((e) => (e.data.delta as Json | undefined)?.partial_json !== '')
        .map(({ data }) => {
          const { message: _m, usage: _u, ...rest } = data;
          return rest;
        });
    const documented = doc.events.map(([event, data]: [string, string]) => ({
      event,
      data: JSON.parse(data),
    }));
    expect(shape(ours)).toEqual(shape(documented));
    expect(accumulate(ours).blocks[1]).toEqual({
      type: 'tool_use',
      id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6',
      name: 'get_weather',
      input: { location: 'San Francisco, CA', unit: 'fahrenheit' },
    });
  });

  it('any text and tool calls survive in order, whatever the chunking', () => {
    const part = fc.oneof(
      fc.record({ text: fc.string({ minLength: 1, maxLength: 8 }) }),
      fc.record({
        name: fc.constantFrom('get_weather', 'search'),
        input: fc.dictionary(
          fc.constantFrom('a', 'b', 'city'),
          fc.oneof(fc.string({ maxLength: 6 }), fc.integer()),
        ),
        pieces: fc.integer({ min: 1, max: 4 }),
      }),
    );
    fc.assert(
      fc.property(
        fc.array(part, { minLength: 1, maxLength: 6 }),
        ending,
        fc.array(fc.nat(), { maxLength: 8 }),
        (parts, nl, at) => {
          const head = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm' };
          const chunk = (delta: Json, finish: string | null = null) => ({
            ...head,
            choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
          });
          const chunks: unknown[] = [chunk({ role: 'assistant', content: '' })];
          const expected: Json[] = [];
          let calls = 0;
          for (const p of parts) {
            if ('text' in p) {
              chunks.push(chunk({ content: p.text }));
              const last = expected.at(-1);
              if (last?.type === 'text') last.text = (last.text as string) + p.text;
              else expected.push({ type: 'text', text: p.text });
              continue;
            }
            const id = `call_${calls}`;
            const args = JSON.stringify(p.input);
            const size = Math.ceil(args.length / p.pieces);
            chunks.push(
              chunk({
                tool_calls: [
                  { index: calls, id, type: 'function', function: { name: p.name, arguments: '' } },
                ],
              }),
            );
            for (let i = 0; i < args.length; i += size)
              chunks.push(
                chunk({ tool_calls: [{ index: calls, function: { arguments: args.slice(i, i + size) } }] }),
              );
            expected.push({ type: 'tool_use', id, name: p.name, input: p.input });
            calls++;
          }
          chunks.push(chunk({}, calls > 0 ? 'tool_calls' : 'stop'));
          const { text, stream } = translate(chunks, nl, at);
          expect(stream.done).toBe(true);
          const evs = events(text);
          expect(evs[0]!.event).toBe('message_start');
          expect(evs.at(-1)!.event).toBe('message_stop');
          // every block opened is closed before the next opens
          let open: number | undefined;
          for (const e of evs) {
            if (e.event === 'content_block_start') {
              expect(open).toBeUndefined();
              open = e.data.index as number;
            }
            if (e.event === 'content_block_delta') expect(e.data.index).toBe(open);
            if (e.event === 'content_block_stop') {
              expect(e.data.index).toBe(open);
              open = undefined;
            }
          }
          const got = accumulate(evs);
          expect(got.blocks).toEqual(expected);
          expect(got.stop).toBe(calls > 0 ? 'tool_use' : 'end_turn');
        },
      ),
      { numRuns: 100 },
    );
  });

  it('a chat stream cut before [DONE] is incomplete (the relay ends it with its error event)', () => {
    const stream = new TranslatedStream(translator().stream!({ model: 'claude-x', includeUsage: true }));
    const text = stream.push(
      Buffer.from(
        chatStream
          .slice(0, 3)
          .map((c) => `data: ${JSON.stringify(c)}\n\n`)
          .join(''),
      ),
    );
    expect(text + stream.finish()).not.toContain('message_stop');
    expect(stream.done).toBe(false);
    expect(messagesIngress.streamError('cut')).toBe(
      'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"cut"}}\n\n',
    );
  });
});

describe('native Messages stream, passed through', () => {
  it.each(['stream-text.json', 'stream-tool-use.json'])(
    '%s: the same bytes out, any chunking and line ending; its end and usage seen',
    (name) => {
      const doc = fixture(name);
      fc.assert(
        fc.property(ending, fc.array(fc.nat(), { maxLength: 16 }), (nl, at) => {
          const sse = doc.events
            .map(([e, d]: [string, string]) => `event: ${e}${nl}data: ${d}${nl}${nl}`)
            .join('');
          const s = new NativeMessagesStream();
          let out = '';
          for (const piece of cut(sse, at)) out += s.push(Buffer.from(piece));
          out += s.finish();
          expect(out).toBe(sse);
          expect(s.done).toBe(true);
          expect(s.contentEvents).toBeGreaterThan(0);
          const u = doc.expected.usage;
          expect(s.usage()).toEqual({
            promptTokens: u.prompt_tokens,
            completionTokens: u.completion_tokens,
            cachedTokens: 0,
            cacheWriteTokens: 0,
            reasoningTokens: 0,
            estimated: false,
          });
        }),
        { numRuns: 60 },
      );
    },
  );

  it('a CRLF split after message_stop still passes its LF (every cut point)', () => {
    const doc = fixture('stream-text.json');
    const sse = doc.events.map(([e, d]: [string, string]) => `event: ${e}\r\ndata: ${d}\r\n\r\n`).join('');
    for (let i = 1; i < sse.length; i++) {
      const s = new NativeMessagesStream();
      const out = s.push(Buffer.from(sse.slice(0, i))) + s.push(Buffer.from(sse.slice(i))) + s.finish();
      expect(out.length, `cut at ${i}`).toBe(sse.length);
    }
  });

  it('a multi-byte character split across chunks comes out whole', () => {
    const sse =
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"日本"}}\n\n';
    const bytes = Buffer.from(sse);
    const s = new NativeMessagesStream();
    const out = s.push(bytes.subarray(0, 95)) + s.push(bytes.subarray(95)) + s.finish();
    expect(out).toBe(sse);
    expect(s.done).toBe(false); // no message_stop yet
  });
});

it('count_tokens estimate: ~4 characters a token over system, messages and tools', () => {
  const body = { model: 'm', system: 'Be brief.', messages: [{ role: 'user', content: 'Hello' }] };
  const chars = JSON.stringify(['Be brief.', body.messages, null]).length;
  expect(estimateInputTokens(body)).toEqual({ input_tokens: Math.ceil(chars / 4) });
});
