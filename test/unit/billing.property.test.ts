import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BodyTail, usageFromJsonBody, usageFromOpenAI } from '../../core/usage.ts';
import { SseTap } from '../../relay/sse.ts';
import {
  chatCompletion,
  chatStream,
  embeddings,
  formatJson,
  imageGeneration,
} from '../helpers/openai-examples.ts';

// What real peers vary: JSON spacing, line breaks (SSE allows LF, CRLF and CR), where the network
// cuts the bytes, and whether the relay hides the usage chunk it asked for.
const spacing = fc.record({
  colon: fc.constantFrom('', ' ', '  ', '\t'),
  comma: fc.constantFrom('', ' ', '\n', '\r\n  '),
  inner: fc.constantFrom('', ' ', '\n  '),
});
const lineBreak = fc.constantFrom('\n', '\r\n', '\r');

/** Cuts `bytes` at the given (sorted, deduplicated) offsets. */
function cut(bytes: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

/** An SSE stream of `events` (JSON data), each data on one line or split over `data:` lines. */
function sse(
  events: unknown[],
  ws: { colon: string; comma: string; inner: string },
  nl: string,
  multiLine: boolean,
) {
  let s = ': keep-alive comment' + nl + nl;
  for (const e of events) {
    const json = formatJson(e, ws);
    const lines = multiLine ? json.split(/\r\n|\n/) : [json.replace(/\r?\n/g, ' ')];
    s += lines.map((l) => `data: ${l}`).join(nl) + nl + nl;
  }
  return `${s}data: [DONE]${nl}${nl}`;
}

function runTap(tap: SseTap, parts: Buffer[]): Buffer {
  let out = '';
  for (const p of parts) out += tap.push(p);
  return Buffer.from(out + tap.flush());
}

const expected = usageFromOpenAI((chatStream.at(-1) as { usage: unknown }).usage)!;

describe('every success is billed: streams', () => {
  it('reads the usage chunk whatever the spacing, framing and chunking, and forwards the rest byte for byte', () => {
    fc.assert(
      fc.property(
        spacing,
        lineBreak,
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 30 }),
        (ws, nl, multiLine, cuts) => {
          const input = Buffer.from(sse(chatStream, ws, nl, multiLine));
          const tap = new SseTap(false);
          const out = runTap(tap, cut(input, cuts));
          expect(tap.usage).toEqual(expected);
          expect(tap.sawDone).toBe(true);
          expect(tap.contentEvents).toBe(2);
          expect(out.equals(input)).toBe(true);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('hides the usage chunk it asked for and the usage:null keys, leaving every other event intact', () => {
    fc.assert(
      fc.property(spacing, lineBreak, fc.array(fc.nat(), { maxLength: 30 }), (ws, nl, cuts) => {
        const input = Buffer.from(sse(chatStream, ws, nl, false));
        const tap = new SseTap(true);
        const out = runTap(tap, cut(input, cuts)).toString('utf8');
        expect(tap.usage).toEqual(expected);
        const events = out.split(`${nl}${nl}`).filter((e) => e.startsWith('data: {'));
        expect(events).toHaveLength(chatStream.length - 1);
        for (const e of events) {
          const data = JSON.parse(e.slice(6)) as Record<string, unknown>;
          expect(data).not.toHaveProperty('usage');
          expect(Array.isArray(data.choices) && data.choices.length).toBe(1);
        }
        expect(out.endsWith(`data: [DONE]${nl}${nl}`)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('stops at [DONE]: nothing after it is forwarded', () => {
    fc.assert(
      fc.property(lineBreak, fc.array(fc.nat(), { maxLength: 10 }), (nl, cuts) => {
        const head = sse(chatStream, { colon: '', comma: '', inner: '' }, nl, false);
        const input = Buffer.from(`${head}data: {"late":"event"}${nl}${nl}`);
        const tap = new SseTap(false);
        const out = runTap(tap, cut(input, cuts)).toString('utf8');
        expect(out).toBe(head);
        expect(tap.sawDone).toBe(true);
      }),
    );
  });
});

describe('every success is billed: bodies', () => {
  const bodies = [chatCompletion, embeddings, imageGeneration];

  it('reads usage from the tail of any documented response, whatever the spacing and chunking', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...bodies),
        spacing,
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.integer({ min: 1024, max: 4096 }), // the usage object and what follows it fit
        (body, ws, cuts, tailBytes) => {
          const bytes = Buffer.from(formatJson(body, ws));
          const tail = new BodyTail(tailBytes);
          for (const part of cut(bytes, cuts)) tail.push(part);
          const { tail: kept, whole } = tail.bytes();
          expect(usageFromJsonBody(kept, whole)).toEqual(usageFromOpenAI(body.usage));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps bounded memory for a body of any size and still finds its usage', () => {
    const big = {
      ...embeddings,
      data: Array.from({ length: 20_000 }, (_, index) => ({
        object: 'embedding',
        index,
        embedding: [0.1, 0.2, 0.3, 0.4],
      })),
    };
    const bytes = Buffer.from(JSON.stringify(big));
    const tail = new BodyTail(64 * 1024);
    for (let i = 0; i < bytes.length; i += 16_384) tail.push(bytes.subarray(i, i + 16_384));
    const { tail: kept, whole } = tail.bytes();
    expect(whole).toBe(false);
    expect(kept.length).toBeLessThanOrEqual(64 * 1024 + 16_384);
    expect(usageFromJsonBody(kept, whole)).toMatchObject({ promptTokens: 8 });
  });

  it('records reasoning, cached and cache-write tokens', () => {
    expect(usageFromOpenAI(chatCompletion.usage)).toEqual({
      promptTokens: 1117,
      completionTokens: 46,
      cachedTokens: 1024,
      cacheWriteTokens: 0,
      reasoningTokens: 12,
      estimated: false,
    });
    expect(
      usageFromOpenAI({
        prompt_tokens: 100,
        completion_tokens: 5,
        prompt_tokens_details: { cached_tokens: 10, cache_write_tokens: 60 },
      }),
    ).toMatchObject({ cachedTokens: 10, cacheWriteTokens: 60 });
    expect(
      usageFromOpenAI({ input_tokens: 3, output_tokens: 9, output_tokens_details: { reasoning_tokens: 7 } }),
    ).toMatchObject({ promptTokens: 3, completionTokens: 9, reasoningTokens: 7 });
  });
});
