// Golden files for the anthropic translation: documented examples on both sides, expected output
// written by hand (test/fixtures/providers/anthropic/README.md).
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { errorOf } from '../../providers/anthropic/errors.ts';
import { toNativeChat } from '../../providers/anthropic/request.ts';
import { fromNativeChat } from '../../providers/anthropic/response.ts';
import { AnthropicChatStream } from '../../providers/anthropic/stream.ts';
import { usageOf } from '../../providers/anthropic/usage.ts';
import { SseParser } from '../../providers/sse.ts';

const dir = new URL('../fixtures/providers/anthropic/', import.meta.url);
// biome-ignore lint/suspicious/noExplicitAny: fixtures are plain JSON
const load = (name: string): any => JSON.parse(readFileSync(new URL(name, dir), 'utf8'));

// biome-ignore lint/suspicious/noExplicitAny: chunks are plain JSON
function run(fixture: any, includeUsage: boolean) {
  const s = new AnthropicChatStream({ model: fixture.model, includeUsage, created: 1_700_000_000 });
  const out: string[] = [];
  for (const [event, data] of fixture.events) out.push(...s.push(event, data));
  out.push(...s.end());
  return { s, chunks: out.map((c) => JSON.parse(c)) };
}

describe('anthropic golden files: requests', () => {
  for (const name of [
    'request-default.json',
    'request-image.json',
    'request-functions.json',
    'request-tool-result.json',
  ]) {
    it(name, () => {
      const f = load(name);
      expect(toNativeChat(f.openai, { upstreamModel: f.upstreamModel })).toEqual(f.expected);
    });
  }
});

describe('anthropic golden files: responses', () => {
  for (const name of ['response-text.json', 'response-tool-use.json']) {
    it(name, () => {
      const f = load(name);
      expect(fromNativeChat(f.native, { model: f.model, created: 1_700_000_000 })).toEqual(f.expected);
    });
  }
  it('usage-cache.json: prompt = input + cache read + cache write', () => {
    const f = load('usage-cache.json');
    expect(usageOf(f.native)).toEqual(f.expected);
  });
  it('error-not-found.json', () => {
    const f = load('error-not-found.json');
    expect(errorOf(f.status, f.native)).toEqual(f.expected);
  });
});

describe('anthropic golden files: streams', () => {
  for (const name of ['stream-text.json', 'stream-tool-use.json']) {
    it(`${name}: chunk by chunk, then the usage chunk`, () => {
      const f = load(name);
      const { s, chunks } = run(f, true);
      const usage = chunks.pop();
      expect(
        chunks.map((c) => ({ delta: c.choices[0].delta, finish_reason: c.choices[0].finish_reason })),
      ).toEqual(f.expected.chunks);
      for (const c of chunks) {
        expect(c).toMatchObject({ id: f.expected.id, object: 'chat.completion.chunk', model: f.model });
      }
      expect(usage).toMatchObject({ id: f.expected.id, choices: [], usage: f.expected.usage });
      expect(s.complete()).toBe(true);
    });
    it(`${name}: no usage chunk unless asked`, () => {
      const f = load(name);
      const { chunks } = run(f, false);
      expect(chunks).toHaveLength(f.expected.chunks.length);
      expect(chunks.every((c) => c.usage === undefined)).toBe(true);
    });
  }

  it('stream-tool-use.json: the chunks add up to the message', () => {
    const f = load('stream-tool-use.json');
    const { chunks } = run(f, false);
    const content = chunks.map((c) => c.choices[0].delta.content ?? '').join('');
    const args = chunks.map((c) => c.choices[0].delta.tool_calls?.[0].function.arguments ?? '').join('');
    expect(content).toBe(f.expected.content);
    expect(args).toBe(f.expected.tool_calls[0].arguments);
    expect(JSON.parse(args)).toEqual({ location: 'San Francisco, CA', unit: 'fahrenheit' });
  });

  it('stream-error.json: an error event ends the stream incomplete (the relay reports it)', () => {
    const f = load('stream-error.json');
    const { s, chunks } = run(f, true);
    expect(
      chunks.map((c) => ({ delta: c.choices[0].delta, finish_reason: c.choices[0].finish_reason })),
    ).toEqual(f.expected.chunks);
    expect(s.complete()).toBe(f.expected.complete);
    expect(s.error).toEqual(f.expected.error);
  });

  it('a stream cut before message_stop is not complete (the relay sends no [DONE])', () => {
    const f = load('stream-text.json');
    const { s, chunks } = run({ ...f, events: f.events.slice(0, 4) }, true);
    expect(chunks.at(-1)).toMatchObject({ choices: [{ delta: { content: 'Hello' } }] });
    expect(s.complete()).toBe(false);
    expect(s.usage()).toMatchObject({ promptTokens: 25, completionTokens: 1 });
  });
});

describe('anthropic golden streams as bytes: any chunk boundaries, LF or CRLF framing', () => {
  for (const name of ['stream-text.json', 'stream-tool-use.json']) {
    it(`${name}: the same chunks however the bytes arrive`, () => {
      const f = load(name);
      const expected = run(f, true).chunks;
      fc.assert(
        fc.property(
          fc.constantFrom('\n', '\r\n', '\r'),
          fc.array(fc.nat(), { maxLength: 20 }),
          (nl, cuts) => {
            const wire = Buffer.from(
              f.events.map(([e, d]: [string, string]) => `event: ${e}${nl}data: ${d}${nl}${nl}`).join(''),
            );
            const at = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
            const parser = new SseParser();
            const s = new AnthropicChatStream({ model: f.model, includeUsage: true, created: 1_700_000_000 });
            const out: string[] = [];
            let from = 0;
            for (const to of [...at, wire.length]) {
              for (const e of parser.push(wire.subarray(from, to))) out.push(...s.push(e.event, e.data));
              from = to;
            }
            for (const e of parser.end()) out.push(...s.push(e.event, e.data));
            expect(out.map((c) => JSON.parse(c))).toEqual(expected);
            expect(s.complete()).toBe(true);
          },
        ),
      );
    });
  }
});
