// Golden files for the gemini provider: Google's documented requests, answers and streams against
// what an OpenAI client must get (test/fixtures/providers/gemini/README.md says where each is from).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { toNativeChat } from '../../providers/gemini/chat-request.ts';
import { fromNativeChat } from '../../providers/gemini/chat-response.ts';
import { GeminiChatStream } from '../../providers/gemini/chat-stream.ts';
import { fromNativeEmbeddings, toNativeEmbeddings } from '../../providers/gemini/embeddings.ts';
import { errorOf } from '../../providers/gemini/errors.ts';
import { usageOf } from '../../providers/gemini/usage.ts';

// biome-ignore lint/suspicious/noExplicitAny: fixtures are plain JSON
const fixture = (name: string): any =>
  JSON.parse(readFileSync(new URL(`../fixtures/providers/gemini/${name}`, import.meta.url), 'utf8'));

/** Replaces generated tool call ids by "<generated>" after checking their form. */
function maskIds(completion: { choices: { message: { tool_calls?: { id: string }[] } }[] }) {
  for (const c of completion.choices) {
    for (const call of c.message.tool_calls ?? []) {
      expect(call.id).toMatch(/^call_[0-9a-f]{24}$/);
      call.id = '<generated>';
    }
  }
  return completion;
}

describe('gemini golden files', () => {
  it('a documented function call answer becomes tool_calls with finish_reason tool_calls', () => {
    const f = fixture('function-call-response.json');
    const first = fromNativeChat(f.native, f.options);
    const again = fromNativeChat(structuredClone(f.native), f.options);
    expect(again).toEqual(first); // generated ids are deterministic
    expect(maskIds(first as never)).toEqual(f.expected);
  });

  it('the documented multi-turn function calling conversation translates to its Gemini body', () => {
    const f = fixture('multi-turn-request.json');
    expect(toNativeChat(f.request, { upstreamModel: 'gemini-pro' })).toEqual(f.expected);
  });

  it("OpenAI's documented function calling request translates to Gemini", () => {
    const f = fixture('openai-tools-request.json');
    expect(toNativeChat(f.request, { upstreamModel: 'gemini-2.5-flash' })).toEqual(f.expected);
  });

  it('the documented stream: text deltas in order, the role once, one finish chunk at the end', () => {
    const f = fixture('stream-text.json');
    const s = new GeminiChatStream(f.options);
    const out = [...f.events.flatMap((e: string) => s.push('', e)), ...s.end()].map((c) => JSON.parse(c));
    expect(out).toEqual(f.expected);
  });

  it('thinking tokens count as reasoning within completion tokens, as documented totals say', () => {
    const f = fixture('thinking-usage.json');
    expect(fromNativeChat(f.native, f.options)).toEqual(f.expected);
    expect(usageOf(f.native)).toEqual(f.expectedTokens);
  });

  it('documented embeddings: a string and an array, answers of embedContent and batchEmbedContents', () => {
    const f = fixture('embeddings.json');
    for (const c of [f.single, f.batch]) {
      const native = toNativeEmbeddings(c.request, { upstreamModel: 'embedding-001' });
      expect(native.body).toEqual(c.expectedNative);
      const out = fromNativeEmbeddings(c.native, { model: c.request.model, texts: native.texts });
      expect(out).toEqual(c.expected);
    }
  });

  it('base64 embeddings decode to the documented floats (float32, little-endian)', () => {
    const f = fixture('embeddings.json');
    const out = fromNativeEmbeddings(f.single.native, {
      model: 'embedding-001',
      encodingFormat: 'base64',
      texts: ['Hello world'],
    }) as { data: { embedding: string }[] };
    const bytes = Buffer.from(out.data[0]!.embedding, 'base64');
    const floats = Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
    const documented = f.single.native.embedding.values as number[];
    expect(floats).toHaveLength(documented.length);
    for (const [i, v] of floats.entries()) expect(v).toBeCloseTo(documented[i]!, 6);
  });

  it('the documented invalid-key error becomes an OpenAI authentication error', () => {
    const f = fixture('error-invalid-key.json');
    expect(errorOf(f.status, f.native)).toEqual(f.expected);
  });
});
