import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UntranslatableError } from '../../providers/contract.ts';
import { SseParser } from '../../providers/sse.ts';
import { TranslatedStream } from '../../relay/client-stream.ts';
import { NativeResponsesStream } from '../../relay/ingress/responses/native-stream.ts';
import { responsesToChat } from '../../relay/ingress/responses/request.ts';
import { chatToResponse } from '../../relay/ingress/responses/response.ts';
import { ChatChunks, ResponsesFromChatStream } from '../../relay/ingress/responses/via-chat.ts';

// Responses API <-> chat completions, with requests and answers from OpenAI's API reference.

const refusal = (body: Record<string, unknown>) => {
  try {
    responsesToChat({ model: 'm', input: 'hi', ...body });
  } catch (err) {
    if (err instanceof UntranslatableError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
};

describe('Responses request -> chat completions request', () => {
  it('text input with instructions (the reference example)', () => {
    const chat = responsesToChat({
      model: 'gpt-4.1',
      instructions: 'You are a coding assistant that talks like a pirate.',
      input: 'Are semicolons optional in JavaScript?',
      max_output_tokens: 50,
      temperature: 0.2,
      stream: true,
    });
    expect(chat).toEqual({
      model: 'gpt-4.1',
      messages: [
        { role: 'system', content: 'You are a coding assistant that talks like a pirate.' },
        { role: 'user', content: 'Are semicolons optional in JavaScript?' },
      ],
      max_completion_tokens: 50,
      temperature: 0.2,
      stream: true,
    });
  });

  it('image input, developer messages, assistant history and reasoning items', () => {
    const chat = responsesToChat({
      model: 'gpt-4.1',
      input: [
        { role: 'developer', content: 'Answer briefly.' },
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'what is in this image?' },
            { type: 'input_image', image_url: 'https://example.com/boardwalk.jpg', detail: 'high' },
          ],
        },
        { type: 'reasoning', id: 'rs_1', summary: [] },
        {
          type: 'message',
          role: 'assistant',
          content: [{ type: 'output_text', text: 'A boardwalk.', annotations: [] }],
        },
        { role: 'user', content: 'And the weather?' },
      ],
    });
    expect(chat.messages).toEqual([
      { role: 'system', content: 'Answer briefly.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'what is in this image?' },
          { type: 'image_url', image_url: { url: 'https://example.com/boardwalk.jpg', detail: 'high' } },
        ],
      },
      { role: 'assistant', content: 'A boardwalk.' },
      { role: 'user', content: 'And the weather?' },
    ]);
  });

  it('function tools, a forced choice, and a tool call round trip', () => {
    const tool = {
      type: 'function',
      name: 'get_current_weather',
      description: 'Get the current weather in a given location',
      parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
    };
    const chat = responsesToChat({
      model: 'gpt-4.1',
      tools: [tool],
      tool_choice: { type: 'function', name: 'get_current_weather' },
      input: [
        { role: 'user', content: "What's the weather like in Boston today?" },
        {
          type: 'function_call',
          call_id: 'call_1',
          name: 'get_current_weather',
          arguments: '{"location":"Boston"}',
        },
        {
          type: 'function_call',
          call_id: 'call_2',
          name: 'get_current_weather',
          arguments: '{"location":"Paris"}',
        },
        { type: 'function_call_output', call_id: 'call_1', output: '{"temp":21}' },
        { type: 'function_call_output', call_id: 'call_2', output: [{ type: 'input_text', text: '18' }] },
      ],
    });
    expect(chat.tools).toEqual([
      {
        type: 'function',
        function: { name: tool.name, description: tool.description, parameters: tool.parameters },
      },
    ]);
    expect(chat.tool_choice).toEqual({ type: 'function', function: { name: 'get_current_weather' } });
    expect(chat.messages).toEqual([
      { role: 'user', content: "What's the weather like in Boston today?" },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            id: 'call_1',
            type: 'function',
            function: { name: 'get_current_weather', arguments: '{"location":"Boston"}' },
          },
          {
            id: 'call_2',
            type: 'function',
            function: { name: 'get_current_weather', arguments: '{"location":"Paris"}' },
          },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temp":21}' },
      { role: 'tool', tool_call_id: 'call_2', content: '18' },
    ]);
  });

  it('structured output: text.format json_schema -> response_format', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] };
    const chat = responsesToChat({
      model: 'm',
      input: 'x',
      text: { format: { type: 'json_schema', name: 'thing', schema, strict: true } },
    });
    expect(chat.response_format).toEqual({
      type: 'json_schema',
      json_schema: { name: 'thing', schema, strict: true },
    });
  });

  it('refuses what needs stored state or has no chat equivalent, naming the field', () => {
    expect(refusal({ previous_response_id: 'resp_1' }).field).toBe('previous_response_id');
    expect(refusal({ background: true }).field).toBe('background');
    expect(refusal({ conversation: 'conv_1' }).field).toBe('conversation');
    expect(refusal({ tools: [{ type: 'web_search_preview' }] }).field).toBe('tools[0].type');
    expect(refusal({ input: [{ type: 'item_reference', id: 'msg_1' }] }).field).toBe('input[0].type');
    expect(
      refusal({ input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'file-1' }] }] }).field,
    ).toBe('input[0].content[0].type');
    expect(refusal({ truncation: 'auto' }).field).toBe('truncation');
    expect(refusal({ max_tool_calls: 3 }).field).toBe('max_tool_calls');
    expect(refusal({ reasoning: { effort: 'low', summary: 'auto' } }).field).toBe('reasoning.summary');
    // what the relay answers itself is not refused: store (answered false), metadata (echoed)
    expect(() =>
      responsesToChat({ model: 'm', input: 'x', store: true, metadata: { a: '1' }, background: false }),
    ).not.toThrow();
  });
});

// OpenAI's documented chat completion example.
const CHAT = {
  id: 'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG',
  object: 'chat.completion',
  created: 1741570283,
  model: 'gpt-4o-2024-08-06',
  choices: [
    {
      index: 0,
      message: {
        role: 'assistant',
        content: 'The image shows a wooden boardwalk.',
        refusal: null,
        annotations: [],
      },
      logprobs: null,
      finish_reason: 'stop',
    },
  ],
  usage: {
    prompt_tokens: 1117,
    completion_tokens: 46,
    total_tokens: 1163,
    prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 8, audio_tokens: 0 },
  },
};

describe('chat completion -> Response object', () => {
  it('text, usage with cached and reasoning tokens, echoed parameters', () => {
    const r = chatToResponse(CHAT, {
      model: 'gpt-4o',
      request: { input: 'x', temperature: 0.5, metadata: { k: 'v' } },
    });
    expect(r).toMatchObject({
      object: 'response',
      created_at: 1741570283,
      status: 'completed',
      model: 'gpt-4o',
      store: false,
      temperature: 0.5,
      metadata: { k: 'v' },
      output: [
        {
          type: 'message',
          role: 'assistant',
          status: 'completed',
          content: [{ type: 'output_text', text: 'The image shows a wooden boardwalk.', annotations: [] }],
        },
      ],
      usage: {
        input_tokens: 1117,
        input_tokens_details: { cached_tokens: 1024 },
        output_tokens: 46,
        output_tokens_details: { reasoning_tokens: 8 },
        total_tokens: 1163,
      },
    });
    expect(r.id).toMatch(/^resp_[0-9a-f]{48}$/);
  });

  it('tool calls become function_call items; length is incomplete', () => {
    const r = chatToResponse(
      {
        choices: [
          {
            message: {
              role: 'assistant',
              content: null,
              tool_calls: [
                { id: 'call_abc', type: 'function', function: { name: 'f', arguments: '{"a":1}' } },
              ],
            },
            finish_reason: 'length',
          },
        ],
      },
      { model: 'm', request: {} },
    );
    expect(r.output).toEqual([
      expect.objectContaining({
        type: 'function_call',
        call_id: 'call_abc',
        name: 'f',
        arguments: '{"a":1}',
        status: 'completed',
      }),
    ]);
    expect(r).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } });
  });
});

/** A chat completions stream (OpenAI's framing) of `pieces` text and one tool call's `args`. */
function chatStream(pieces: string[], args: string[], nl: string, spaced: boolean): string {
  const chunk = (delta: unknown, finish: string | null = null) =>
    JSON.stringify({
      id: 'c',
      object: 'chat.completion.chunk',
      created: 1,
      model: 'm',
      choices: [{ index: 0, delta, finish_reason: finish }],
    });
  const events = [chunk({ role: 'assistant', content: '' })];
  for (const p of pieces) events.push(chunk({ content: p }));
  for (const [i, a] of args.entries()) {
    const call =
      i === 0
        ? { index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: a } }
        : { index: 0, function: { arguments: a } };
    events.push(chunk({ tool_calls: [call] }));
  }
  events.push(chunk({}, args.length > 0 ? 'tool_calls' : 'stop'));
  events.push(
    JSON.stringify({
      id: 'c',
      object: 'chat.completion.chunk',
      choices: [],
      usage: { prompt_tokens: 3, completion_tokens: 4 },
    }),
  );
  events.push('[DONE]');
  // spaced: other servers' JSON formatting (a space after every `:` and `,`, strings untouched)
  const space = (e: string) =>
    e === '[DONE]' ? e : JSON.stringify(JSON.parse(e), null, 1).replace(/\n\s*/g, ' ');
  const text = events.map((e) => `data: ${spaced ? space(e) : e}\n\n`).join('');
  return text.replace(/\n/g, nl);
}

const split = (bytes: Buffer, cuts: number[]) => {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let at = 0;
  for (const c of [...points, bytes.length]) {
    out.push(bytes.subarray(at, c));
    at = c;
  }
  return out;
};

type Ev = Record<string, unknown> & { type: string; sequence_number: number };

function events(sse: string): Ev[] {
  const p = new SseParser();
  return [...p.push(sse), ...p.end()].map((e) => {
    const data = JSON.parse(e.data) as Ev;
    expect(e.event).toBe(data.type); // framed as OpenAI frames it: the event line names the type
    return data;
  });
}

describe('chat stream -> Responses stream events', () => {
  it('whatever the chunk boundaries, line endings and spacing: one well-formed event sequence', () => {
    const piece = fc.string({ minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 6 }),
        fc.array(piece, { maxLength: 4 }),
        fc.constantFrom('\n', '\r\n', '\r'),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 10 }),
        (pieces, args, nl, spaced, cuts) => {
          const s = new TranslatedStream(
            new ResponsesFromChatStream(new ChatChunks(), {
              model: 'gpt-4o',
              request: { input: 'x' },
            }),
          );
          let out = '';
          for (const part of split(Buffer.from(chatStream(pieces, args, nl, spaced)), cuts))
            out += s.push(part);
          out += s.finish();
          expect(s.done).toBe(true);
          const evs = events(out);
          expect(evs.map((e) => e.sequence_number)).toEqual(evs.map((_, i) => i));
          expect(evs.slice(0, 2).map((e) => e.type)).toEqual(['response.created', 'response.in_progress']);
          const last = evs.at(-1)!;
          expect(last.type).toBe('response.completed');
          const text = pieces.join('');
          const deltas = evs
            .filter((e) => e.type === 'response.output_text.delta')
            .map((e) => e.delta)
            .join('');
          expect(deltas).toBe(text);
          const argDeltas = evs
            .filter((e) => e.type === 'response.function_call_arguments.delta')
            .map((e) => e.delta)
            .join('');
          expect(argDeltas).toBe(args.join(''));
          // every delta names an item added before it; every added item is done before the end
          const added = new Set(
            evs
              .filter((e) => e.type === 'response.output_item.added')
              .map((e) => (e.item as { id: string }).id),
          );
          for (const e of evs)
            if (e.type.endsWith('.delta')) expect(added.has(e.item_id as string)).toBe(true);
          const done = evs
            .filter((e) => e.type === 'response.output_item.done')
            .map((e) => (e.item as { id: string }).id);
          expect(new Set(done)).toEqual(added);
          const response = last.response as { output: { type: string }[]; usage: unknown; id: string };
          expect(response.output.map((o) => o.type)).toEqual([
            ...(text !== '' || args.length === 0 ? (text !== '' ? ['message'] : []) : []),
            ...(args.length > 0 ? ['function_call'] : []),
          ]);
          expect(response.usage).toMatchObject({ input_tokens: 3, output_tokens: 4 });
          expect(s.usage()).toMatchObject({ promptTokens: 3, completionTokens: 4, estimated: false });
          expect((evs[0]!.response as { id: string }).id).toBe(response.id);
          expect(s.contentEvents).toBe(pieces.length + args.length);
        },
      ),
    );
  });

  it('a stream cut before its end is not done (the relay then ends it with an error event)', () => {
    const s = new TranslatedStream(
      new ResponsesFromChatStream(new ChatChunks(), { model: 'm', request: {} }),
    );
    const full = chatStream(['Hello', ' there'], [], '\n', false);
    s.push(Buffer.from(full.slice(0, full.indexOf('finish_reason":"stop"') - 50)));
    const rest = s.finish();
    expect(s.done).toBe(false);
    expect(rest).not.toContain('response.completed');
  });
});

// OpenAI's documented Responses stream (abridged bodies), as the native channel sends it.
const NATIVE = [
  [
    'response.created',
    {
      response: {
        id: 'resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654',
        object: 'response',
        status: 'in_progress',
        output: [],
        usage: null,
      },
    },
  ],
  [
    'response.in_progress',
    { response: { id: 'resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654', status: 'in_progress' } },
  ],
  [
    'response.output_item.added',
    {
      output_index: 0,
      item: { id: 'msg_1', type: 'message', status: 'in_progress', role: 'assistant', content: [] },
    },
  ],
  [
    'response.content_part.added',
    {
      item_id: 'msg_1',
      output_index: 0,
      content_index: 0,
      part: { type: 'output_text', text: '', annotations: [] },
    },
  ],
  ['response.output_text.delta', { item_id: 'msg_1', output_index: 0, content_index: 0, delta: 'Hi' }],
  ['response.output_text.delta', { item_id: 'msg_1', output_index: 0, content_index: 0, delta: ' there' }],
  ['response.output_text.done', { item_id: 'msg_1', output_index: 0, content_index: 0, text: 'Hi there' }],
  [
    'response.completed',
    {
      response: {
        id: 'resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654',
        status: 'completed',
        usage: {
          input_tokens: 37,
          input_tokens_details: { cached_tokens: 5 },
          output_tokens: 11,
          output_tokens_details: { reasoning_tokens: 2 },
          total_tokens: 48,
        },
      },
    },
  ],
] as const;

describe('native Responses stream (pass-through)', () => {
  it('passes every event on, whatever the boundaries; reads its id, its end and its usage', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('\n', '\r\n'),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 10 }),
        (nl, named, cuts) => {
          const sse = NATIVE.map(([type, f], i) => {
            const data = JSON.stringify({ type, sequence_number: i, ...f });
            return `${named ? `event: ${type}${nl}` : ''}data: ${data}${nl}${nl}`;
          }).join('');
          const s = new NativeResponsesStream();
          let out = '';
          let idSeenAt = -1;
          for (const part of split(Buffer.from(sse), cuts)) {
            out += s.push(part);
            if (idSeenAt < 0 && s.objectId) idSeenAt = out.length;
          }
          out += s.finish();
          expect(s.done).toBe(true);
          expect(s.objectId).toBe('resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654');
          expect(s.contentEvents).toBe(2);
          expect(s.usage()).toMatchObject({
            promptTokens: 37,
            cachedTokens: 5,
            completionTokens: 11,
            reasoningTokens: 2,
          });
          const p = new SseParser();
          const got = [...p.push(out), ...p.end()].map((e) => JSON.parse(e.data).type);
          expect(got).toEqual(NATIVE.map(([t]) => t));
        },
      ),
    );
  });
});
