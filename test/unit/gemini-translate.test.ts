// The gemini translation beyond the documented examples: refusals naming the field, tool_choice,
// images, tool call round trips, and stream/non-stream agreement (property-based).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UntranslatableError } from '../../providers/contract.ts';
import { toNativeChat } from '../../providers/gemini/chat-request.ts';
import { fromNativeChat } from '../../providers/gemini/chat-response.ts';
import { GeminiChatStream } from '../../providers/gemini/chat-stream.ts';
import { toNativeEmbeddings } from '../../providers/gemini/embeddings.ts';
import { geminiPath } from '../../providers/gemini/endpoint.ts';
import { isRetryable } from '../../providers/gemini/errors.ts';

const opts = { upstreamModel: 'gemini-2.5-flash' };
const user = [{ role: 'user', content: 'Hi' }];

function refusedParam(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof UntranslatableError) return err.field;
    throw err;
  }
  throw new Error('not refused');
}

describe('gemini chat request', () => {
  it.each([
    [{ messages: user, logprobs: true }, 'logprobs'],
    [{ messages: user, parallel_tool_calls: false }, 'parallel_tool_calls'],
    [{ messages: [{ role: 'user', content: 'x', name: 'bob' }] }, 'messages[0].name'],
    [{ messages: user, response_format: { type: 'xml' } }, 'response_format.type'],
    [{ messages: user, reasoning_effort: 'extreme' }, 'reasoning_effort'],
    [{ messages: user, tools: [{ type: 'web_search' }] }, 'tools[0].type'],
    [
      {
        messages: [
          { role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] },
        ],
      },
      'messages[0].content[0].image_url.url',
    ],
    [{ messages: [{ role: 'tool', tool_call_id: 'nope', content: '1' }] }, 'messages[0].tool_call_id'],
    [
      {
        messages: [
          {
            role: 'assistant',
            tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: '[1]' } }],
          },
        ],
      },
      'messages[0].tool_calls[0].function.arguments',
    ],
  ])('refuses what Gemini cannot say, naming the field (%#)', (body, param) => {
    expect(refusedParam(() => toNativeChat({ model: 'm', ...body }, opts))).toBe(param);
  });

  it('maps tool_choice to functionCallingConfig', () => {
    const tools = [{ type: 'function', function: { name: 'f' } }];
    const cfg = (tool_choice: unknown) =>
      toNativeChat({ messages: user, tools, tool_choice }, opts)['toolConfig'];
    expect(cfg('none')).toEqual({ functionCallingConfig: { mode: 'NONE' } });
    expect(cfg('required')).toEqual({ functionCallingConfig: { mode: 'ANY' } });
    expect(cfg({ type: 'function', function: { name: 'f' } })).toEqual({
      functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['f'] },
    });
  });

  it('data: URL images become inlineData; system messages become systemInstruction', () => {
    const body = toNativeChat(
      {
        messages: [
          { role: 'system', content: 'Be brief.' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is this?' },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
            ],
          },
        ],
        n: 2,
        response_format: { type: 'json_schema', json_schema: { name: 's', schema: { type: 'object' } } },
      },
      opts,
    );
    expect(body).toEqual({
      systemInstruction: { parts: [{ text: 'Be brief.' }] },
      contents: [
        {
          role: 'user',
          parts: [{ text: 'What is this?' }, { inlineData: { mimeType: 'image/png', data: 'iVBORw0KGgo=' } }],
        },
      ],
      generationConfig: {
        candidateCount: 2,
        responseMimeType: 'application/json',
        responseJsonSchema: { type: 'object' },
      },
    });
  });

  it("a call's thought signature travels in its id and comes back on the functionCall part", () => {
    const answer = fromNativeChat(
      {
        candidates: [
          {
            content: {
              role: 'model',
              parts: [{ functionCall: { name: 'f', args: { a: 1 } }, thoughtSignature: 'c2ln' }],
            },
            finishReason: 'STOP',
          },
        ],
      },
      { model: 'm', id: 'x', created: 1 },
    ) as { choices: { message: { tool_calls: unknown[] } }[] };
    const calls = answer.choices[0]!.message.tool_calls as { id: string }[];
    const next = toNativeChat(
      {
        messages: [
          ...user,
          { role: 'assistant', content: null, tool_calls: calls },
          { role: 'tool', tool_call_id: calls[0]!.id, content: 'done' },
        ],
      },
      opts,
    );
    expect(next['contents']).toEqual([
      { role: 'user', parts: [{ text: 'Hi' }] },
      { role: 'model', parts: [{ functionCall: { name: 'f', args: { a: 1 } }, thoughtSignature: 'c2ln' }] },
      { role: 'user', parts: [{ functionResponse: { name: 'f', response: { result: 'done' } } }] },
    ]);
  });
});

describe('gemini answers', () => {
  const answer = (finishReason: string, parts: unknown[] = [{ text: 'x' }]) =>
    fromNativeChat(
      { candidates: [{ content: { role: 'model', parts }, finishReason, index: 0 }] },
      {
        model: 'm',
        id: 'i',
        created: 1,
      },
    ) as { choices: { finish_reason: string }[] };

  it.each([
    ['STOP', 'stop'],
    ['MAX_TOKENS', 'length'],
    ['SAFETY', 'content_filter'],
    ['RECITATION', 'content_filter'],
    ['PROHIBITED_CONTENT', 'content_filter'],
    ['OTHER', 'stop'],
  ])('finishReason %s -> %s', (native, openai) => {
    expect(answer(native).choices[0]!.finish_reason).toBe(openai);
  });

  it('a blocked prompt (no candidates) is a content_filter answer, whole and streamed', () => {
    const blocked = { promptFeedback: { blockReason: 'SAFETY' }, usageMetadata: { promptTokenCount: 4 } };
    const whole = fromNativeChat(blocked, { model: 'm', id: 'i', created: 1 }) as {
      choices: { finish_reason: string; message: { content: unknown } }[];
    };
    expect(whole.choices).toEqual([
      {
        index: 0,
        message: { role: 'assistant', content: null, refusal: null },
        logprobs: null,
        finish_reason: 'content_filter',
      },
    ]);
    const s = new GeminiChatStream({ model: 'm', id: 'i', created: 1, includeUsage: false });
    expect(s.push('', JSON.stringify(blocked))).toEqual([]);
    const tail = s.end().map((c) => JSON.parse(c));
    expect(s.complete()).toBe(true);
    expect(tail.map((c) => c.choices[0].finish_reason)).toEqual(['content_filter']);
  });

  it('thought parts are not answer text', () => {
    const r = fromNativeChat(
      {
        candidates: [
          {
            content: { role: 'model', parts: [{ text: 'thinking...', thought: true }, { text: 'Hi' }] },
            finishReason: 'STOP',
          },
        ],
      },
      { model: 'm', id: 'i', created: 1 },
    ) as { choices: { message: { content: string } }[] };
    expect(r.choices[0]!.message.content).toBe('Hi');
  });
});

describe('gemini stream', () => {
  const native = (parts: unknown[], finishReason?: string) =>
    JSON.stringify({
      candidates: [
        { content: { role: 'model', parts }, index: 0, ...(finishReason ? { finishReason } : {}) },
      ],
    });

  it('whatever the split of the text and calls into events, the stream says what the whole answer says', () => {
    const piece = fc.oneof(
      fc.string({ minLength: 1 }).map((text) => ({ text })),
      fc.record({
        functionCall: fc.record({
          name: fc.constantFrom('a', 'b'),
          args: fc.dictionary(fc.string(), fc.integer()),
        }),
      }),
    );
    fc.assert(
      fc.property(fc.array(piece, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(8)), (parts, cuts) => {
        const whole = fromNativeChat(JSON.parse(native(parts, 'STOP')), {
          model: 'm',
          id: 'i',
          created: 1,
        }) as {
          choices: { message: { content: string | null; tool_calls?: unknown[] }; finish_reason: string }[];
        };
        const bounds = [...new Set([0, ...cuts.map((c) => Math.min(c, parts.length)), parts.length])].sort(
          (x, y) => x - y,
        );
        const s = new GeminiChatStream({ model: 'm', id: 'i', created: 1, includeUsage: false });
        const chunks: {
          choices: {
            delta: { role?: string; content?: string; tool_calls?: { index: number }[] };
            finish_reason: string | null;
          }[];
        }[] = [];
        for (let k = 1; k < bounds.length; k++) {
          const last = k === bounds.length - 1;
          chunks.push(
            ...s
              .push('', native(parts.slice(bounds[k - 1], bounds[k]), last ? 'STOP' : undefined))
              .map((c) => JSON.parse(c)),
          );
        }
        chunks.push(...s.end().map((c) => JSON.parse(c)));
        const deltas = chunks.map((c) => c.choices[0]!);
        expect(deltas.filter((d) => d.delta.role === 'assistant')).toHaveLength(1);
        expect(deltas.filter((d) => d.finish_reason !== null).map((d) => d.finish_reason)).toEqual([
          whole.choices[0]!.finish_reason,
        ]);
        expect(deltas.map((d) => d.delta.content ?? '').join('')).toBe(
          whole.choices[0]!.message.content ?? '',
        );
        const calls = deltas.flatMap((d) => d.delta.tool_calls ?? []);
        expect(calls.map(({ index, ...rest }) => rest)).toEqual(whole.choices[0]!.message.tool_calls ?? []);
        expect(calls.map((c) => c.index)).toEqual(calls.map((_, i) => i));
      }),
    );
  });

  it('usage: the last usageMetadata, as a final chunk only when asked for', () => {
    const ev = (n: number) =>
      JSON.stringify({
        candidates: [
          {
            content: { role: 'model', parts: [{ text: 'x' }] },
            index: 0,
            ...(n === 3 ? { finishReason: 'STOP' } : {}),
          },
        ],
        usageMetadata: { promptTokenCount: 5, candidatesTokenCount: n, cachedContentTokenCount: 2 },
      });
    for (const includeUsage of [true, false]) {
      const s = new GeminiChatStream({ model: 'm', id: 'i', created: 1, includeUsage });
      s.push('', ev(1));
      s.push('', ev(3));
      const tail = s.end().map((c) => JSON.parse(c));
      expect(s.usage()).toEqual({
        promptTokens: 5,
        completionTokens: 3,
        cachedTokens: 2,
        cacheWriteTokens: 0,
        reasoningTokens: 0,
      });
      expect(tail.some((c) => c.usage)).toBe(includeUsage);
    }
  });

  it('an error event in the stream ends it incomplete, the error kept in OpenAI terms', () => {
    const s = new GeminiChatStream({ model: 'm', id: 'i', created: 1, includeUsage: false });
    expect(s.push('', native([{ text: 'partial' }]))).toHaveLength(1);
    const e = JSON.stringify({
      error: { code: 503, message: 'The model is overloaded.', status: 'UNAVAILABLE' },
    });
    expect(s.push(undefined, e)).toEqual([]);
    expect(s.push('', native([{ text: 'more' }], 'STOP'))).toEqual([]);
    expect(s.error).toEqual({
      message: 'The model is overloaded.',
      type: 'server_error',
      code: 'unavailable',
    });
    expect(s.end()).toEqual([]);
    expect(s.complete()).toBe(false);
  });

  it('a stream that ends without a finishReason is incomplete: no finish chunk', () => {
    const s = new GeminiChatStream({ model: 'm', id: 'i', created: 1, includeUsage: true });
    s.push('', native([{ text: 'cut' }]));
    expect(s.complete()).toBe(false);
    expect(s.end()).toEqual([]);
  });
});

describe('gemini endpoint, embeddings, errors', () => {
  it("builds the documented paths under the SDK's base URL", () => {
    expect(geminiPath('', 'gemini-2.5-flash', 'generateContent')).toBe(
      '/v1beta/models/gemini-2.5-flash:generateContent',
    );
    expect(geminiPath('/v1beta/', 'g', 'streamGenerateContent')).toBe(
      '/v1beta/models/g:streamGenerateContent?alt=sse',
    );
    expect(geminiPath('/proxy', 'g', 'batchEmbedContents')).toBe('/proxy/v1beta/models/g:batchEmbedContents');
    expect(geminiPath('', 'models/gemini-2.5-pro', 'generateContent')).toBe(
      '/v1beta/models/gemini-2.5-pro:generateContent',
    );
    expect(geminiPath('', 'tunedModels/mine', 'generateContent')).toBe(
      '/v1beta/tunedModels/mine:generateContent',
    );
    expect(toNativeEmbeddings({ input: 'a' }, { upstreamModel: 'models/e' }).body).toEqual({
      requests: [{ model: 'models/e', content: { parts: [{ text: 'a' }] } }],
    });
  });

  it('dimensions -> outputDimensionality; token-array input is refused', () => {
    expect(toNativeEmbeddings({ input: 'a', dimensions: 8 }, opts).body).toEqual({
      requests: [
        { model: 'models/gemini-2.5-flash', content: { parts: [{ text: 'a' }] }, outputDimensionality: 8 },
      ],
    });
    expect(refusedParam(() => toNativeEmbeddings({ input: [[1, 2]] }, opts))).toBe('input');
    expect(refusedParam(() => toNativeEmbeddings({ input: 'a', encoding_format: 'int8' }, opts))).toBe(
      'encoding_format',
    );
  });

  it('retries 429, 500, 503 and 504 only', () => {
    expect([400, 403, 404, 429, 500, 503, 504].filter(isRetryable)).toEqual([429, 500, 503, 504]);
  });
});
