// The gemini adapter's wiring (auth, URL per operation, what it serves) and an invariant of the
// request translation: every text message reaches Gemini, in order, with its role.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { adapterFor } from '../../providers/index.ts';

const gemini = adapterFor('gemini');
const target = { baseURL: 'https://generativelanguage.googleapis.com', basePath: '', apiKey: 'AIza-secret' };

describe('gemini adapter', () => {
  it('authenticates with x-goog-api-key only, and serves chat and embeddings', () => {
    expect(gemini.auth(target)).toEqual({ 'x-goog-api-key': 'AIza-secret' });
    expect(
      ['chat', 'completions', 'embeddings', 'images'].filter((op) => gemini.supports(op as never)),
    ).toEqual(['chat', 'embeddings']);
  });

  it('one URL per operation', () => {
    const url = (operation: 'chat' | 'embeddings', stream: boolean) =>
      gemini.url(target, { operation, upstreamModel: 'gemini-2.5-flash', stream });
    expect(url('chat', false)).toBe('/v1beta/models/gemini-2.5-flash:generateContent');
    expect(url('chat', true)).toBe('/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
    expect(url('embeddings', false)).toBe('/v1beta/models/gemini-2.5-flash:batchEmbedContents');
  });

  it('every text message reaches Gemini in order: system as systemInstruction, the rest as contents', () => {
    const message = fc.record({
      role: fc.constantFrom('system', 'user', 'assistant'),
      content: fc.string({ minLength: 1 }),
    });
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 12 }), (messages) => {
        fc.pre(messages.some((m) => m.role !== 'system'));
        const native = gemini.translator('chat')!.request(
          { model: 'm', messages },
          {
            operation: 'chat',
            upstreamModel: 'g',
            stream: false,
          },
        ) as {
          systemInstruction?: { parts: { text: string }[] };
          contents: { role: string; parts: { text: string }[] }[];
        };
        const system = messages.filter((m) => m.role === 'system').map((m) => m.content);
        expect(native.systemInstruction?.parts.map((p) => p.text) ?? []).toEqual(system);
        const rest = messages.filter((m) => m.role !== 'system');
        expect(native.contents.map((c) => [c.role, c.parts.map((p) => p.text).join('')])).toEqual(
          rest.map((m) => [m.role === 'assistant' ? 'model' : 'user', m.content]),
        );
      }),
    );
  });

  it('retryable: 429, 500, 503, 504; other statuses defer to the channel', () => {
    expect([400, 404, 429, 500, 502, 503, 504].map((s) => gemini.retryable!(s))).toEqual([
      undefined,
      undefined,
      true,
      true,
      undefined,
      true,
      true,
    ]);
  });
});
